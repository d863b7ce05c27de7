package shadow

import (
	"io"
	"net/http"
	"sort"

	"github.com/nagare-iot/nagare/internal/api"
)

// Register mounts the shadow operations: the AWS IoT Data Plane shadow
// calls under /v1/things, plus a list of things for boards.
func (s *Service) Register(rt *api.Router) {
	const name = " (`?name=` selects a named shadow; without it, the classic shadow)"
	rt.Handle(api.Op{Name: "Shadow:getThingShadow", Method: "GET", Path: "/v1/things/{thing_name}/shadow", Auth: api.AuthToken,
		Summary: "Gets a device shadow: state (desired, reported, delta), metadata, version, timestamp, as AWS IoT GetThingShadow" + name,
		Handler: s.httpGet})
	rt.Handle(api.Op{Name: "Shadow:updateThingShadow", Method: "POST", Path: "/v1/things/{thing_name}/shadow", Auth: api.AuthToken,
		Summary: "Updates a device shadow with an AWS request document {state:{desired,reported},clientToken,version} (created if missing; null deletes; 409 on a version mismatch) and answers the accepted document; MQTT subscribers get accepted, delta and documents" + name,
		Handler: s.httpUpdate})
	rt.Handle(api.Op{Name: "Shadow:deleteThingShadow", Method: "DELETE", Path: "/v1/things/{thing_name}/shadow", Auth: api.AuthToken,
		Summary: "Deletes a device shadow; answers {version, timestamp}" + name,
		Handler: s.httpDelete})
	rt.Handle(api.Op{Name: "Shadow:listNamedShadowsForThing", Method: "GET", Path: "/v1/things/{thing_name}/shadows", Auth: api.AuthToken,
		Summary: "Lists a thing's named shadows: {results, nextToken?, timestamp} (query pageSize 1-100, nextToken)",
		Handler: s.httpListNamed})
	rt.Handle(api.Op{Name: "Shadow:listThings", Method: "GET", Path: "/v1/things", Auth: api.AuthToken,
		Summary: "Lists the things that have shadows: {things: [{thingName, classicShadow, namedShadows}], nextToken?} (query pageSize 1-250, nextToken)",
		Handler: s.httpListThings})
}

func writeRaw(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	w.Write([]byte("\n"))
}

func (s *Service) httpGet(w http.ResponseWriter, r *http.Request) {
	p := api.PrincipalFrom(r.Context())
	b, err := s.Get(r.Context(), p.OperatorID, r.PathValue("thing_name"), r.URL.Query().Get("name"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	writeRaw(w, b)
}

func (s *Service) httpUpdate(w http.ResponseWriter, r *http.Request) {
	p := api.PrincipalFrom(r.Context())
	// One byte over the limit is enough for ParseUpdate to answer 413.
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.opts.MaxRequestBytes)+1))
	if err != nil {
		api.WriteError(w, r, api.BadRequest("reading request body: %v", err))
		return
	}
	b, err := s.Update(r.Context(), p.OperatorID, r.PathValue("thing_name"), r.URL.Query().Get("name"), body)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	writeRaw(w, b)
}

func (s *Service) httpDelete(w http.ResponseWriter, r *http.Request) {
	p := api.PrincipalFrom(r.Context())
	b, err := s.Delete(r.Context(), p.OperatorID, r.PathValue("thing_name"), r.URL.Query().Get("name"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	writeRaw(w, b)
}

// page cuts a sorted list after nextToken (the last item of the page
// before) to at most size items.
func page[T any](items []T, keyOf func(T) string, r *http.Request, def, maxSize int64) ([]T, string, error) {
	size, err := api.QueryInt(r, "pageSize", def, 1, maxSize)
	if err != nil {
		return nil, "", err
	}
	if after := r.URL.Query().Get("nextToken"); after != "" {
		i := sort.Search(len(items), func(i int) bool { return keyOf(items[i]) > after })
		items = items[i:]
	}
	next := ""
	if int64(len(items)) > size {
		items = items[:size]
		next = keyOf(items[len(items)-1])
	}
	return items, next, nil
}

func (s *Service) httpListNamed(w http.ResponseWriter, r *http.Request) {
	p := api.PrincipalFrom(r.Context())
	names, err := s.ListNamedShadows(r.Context(), p.OperatorID, r.PathValue("thing_name"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	names, next, err := page(names, func(s string) string { return s }, r, 25, 100)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	out := map[string]any{"results": append([]string{}, names...), "timestamp": s.now().Unix()}
	if next != "" {
		out["nextToken"] = next
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (s *Service) httpListThings(w http.ResponseWriter, r *http.Request) {
	p := api.PrincipalFrom(r.Context())
	things, err := s.ListThings(r.Context(), p.OperatorID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	things, next, err := page(things, func(t *Thing) string { return t.ThingName }, r, 100, 250)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	out := map[string]any{"things": append([]*Thing{}, things...)}
	if next != "" {
		out["nextToken"] = next
	}
	api.WriteJSON(w, http.StatusOK, out)
}
