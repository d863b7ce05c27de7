package inventory

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/nagare-iot/nagare/internal/api"
)

// Group configuration namespaces (SORACOM's list).
const (
	NamespaceHarvest      = "SoracomHarvest"
	NamespaceHarvestFiles = "SoracomHarvestFiles"
)

var namespaces = map[string]bool{
	"SoracomAir": true, "SoracomBeam": true, "SoracomEndorse": true, "SoracomFlux": true, "SoracomFunk": true,
	"SoracomFunnel": true, NamespaceHarvest: true, NamespaceHarvestFiles: true, "SoracomKrypton": true,
	"SoracomOrbit": true, "UnifiedEndpoint": true,
}

// Configuration is a group's namespace → key → JSON value.
type Configuration map[string]map[string]json.RawMessage

// Group is a SORACOM group: configuration shared by its devices and SIMs.
type Group struct {
	GroupID          string        `json:"groupId"`
	OperatorID       string        `json:"operatorId"`
	CreatedTime      int64         `json:"createdTime"`
	LastModifiedTime int64         `json:"lastModifiedTime"`
	Configuration    Configuration `json:"configuration"`
	Tags             Tags          `json:"tags"`
}

// Enabled reports whether the namespace's "enabled" parameter is true.
func (c Configuration) Enabled(namespace string) bool {
	return string(bytes.TrimSpace(c[namespace]["enabled"])) == "true"
}

// Enabled reports whether the namespace's "enabled" parameter is true.
func (g *Group) Enabled(namespace string) bool { return g.Configuration.Enabled(namespace) }

const maxConfigBytes = 64 << 10

func checkNamespace(ns string) error {
	if !namespaces[ns] {
		return api.Invalid("unknown configuration namespace %q; known: SoracomAir, SoracomBeam, SoracomEndorse, SoracomFlux, SoracomFunk, SoracomFunnel, SoracomHarvest, SoracomHarvestFiles, SoracomKrypton, SoracomOrbit, UnifiedEndpoint", ns)
	}
	return nil
}

// checkConfiguration validates a whole configuration.
func checkConfiguration(c Configuration) error {
	for ns, params := range c {
		if err := checkNamespace(ns); err != nil {
			return err
		}
		for k, v := range params {
			if k == "" || len(k) > maxTagName {
				return api.Invalid("%s: parameter names must be 1 to %d bytes", ns, maxTagName)
			}
			if len(v) == 0 || !json.Valid(v) {
				return api.Invalid("%s.%s: a JSON value is required", ns, k)
			}
			if k == "enabled" && (ns == NamespaceHarvest || ns == NamespaceHarvestFiles) {
				if s := string(bytes.TrimSpace(v)); s != "true" && s != "false" {
					return api.Invalid("%s.enabled must be true or false, not %s", ns, s)
				}
			}
		}
	}
	if len(marshalJSON(c)) > maxConfigBytes {
		return api.Invalid("configuration must be at most %d bytes of JSON", maxConfigBytes)
	}
	return nil
}

const groupCols = "group_id, operator_id, configuration, tags, created_at, updated_at"

func scanGroup(row interface{ Scan(...any) error }) (*Group, error) {
	var g Group
	var conf, tags string
	if err := row.Scan(&g.GroupID, &g.OperatorID, &conf, &tags, &g.CreatedTime, &g.LastModifiedTime); err != nil {
		return nil, err
	}
	g.Configuration = Configuration{}
	_ = json.Unmarshal([]byte(conf), &g.Configuration)
	g.Tags = decodeTags(tags)
	return &g, nil
}

func groupNotFound(id string) error { return api.NotFound("group %s not found", id) }

func isNotFound(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// GetGroup returns one of the operator's groups (404 when absent).
func (s *Service) GetGroup(ctx context.Context, operatorID, id string) (*Group, error) {
	g, err := scanGroup(s.db.QueryRowContext(ctx, `SELECT `+groupCols+` FROM device_groups WHERE operator_id = $1 AND group_id = $2`, operatorID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, groupNotFound(id)
	}
	return g, err
}

// lockGroup checks that a group exists and, on PostgreSQL, locks it until
// tx ends, so it cannot be deleted while a member is being added.
func (s *Service) lockGroup(ctx context.Context, tx *sql.Tx, operatorID, id string) error {
	var got string
	err := tx.QueryRowContext(ctx, `SELECT group_id FROM device_groups WHERE operator_id = $1 AND group_id = $2`+s.forUpdate(), operatorID, id).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return groupNotFound(id)
	}
	return err
}

// lockGroupRef is lockGroup for a groupId given in a create request: an
// unknown group there is a bad value (400), not a missing resource.
func (s *Service) lockGroupRef(ctx context.Context, tx *sql.Tx, operatorID, id string) error {
	err := s.lockGroup(ctx, tx, operatorID, id)
	if isNotFound(err) {
		return api.Invalid("group %s does not exist", id)
	}
	return err
}

// updateGroup applies fn to a group under a row lock and saves it.
func (s *Service) updateGroup(ctx context.Context, operatorID, id string, fn func(g *Group) error) (*Group, error) {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		g, err := scanGroup(tx.QueryRowContext(ctx, `SELECT `+groupCols+` FROM device_groups WHERE operator_id = $1 AND group_id = $2`+s.forUpdate(), operatorID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return groupNotFound(id)
		}
		if err != nil {
			return err
		}
		if err := fn(g); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE device_groups SET configuration = $1, tags = $2, updated_at = $3 WHERE operator_id = $4 AND group_id = $5`,
			marshalJSON(g.Configuration), marshalJSON(g.Tags), ms(s.now()), operatorID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.GetGroup(ctx, operatorID, id)
}

type createGroupRequest struct {
	Configuration Configuration `json:"configuration"`
	Tags          Tags          `json:"tags"`
}

// ConfigParam is one element of a GroupConfigurationUpdateRequest array.
type ConfigParam struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

func (s *Service) registerGroups(rt *api.Router) {
	rt.Handle(api.Op{Name: "Group:createGroup", Method: "POST", Path: "/v1/groups",
		Summary: `Create a group: {"configuration":{"SoracomHarvest":{"enabled":true}},"tags":{"name":"…"}}`,
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			var req createGroupRequest
			if err := api.DecodeJSON(w, r, &req, true); err != nil {
				return 0, nil, err
			}
			if req.Configuration == nil {
				req.Configuration = Configuration{}
			}
			if req.Tags == nil {
				req.Tags = Tags{}
			}
			if err := checkConfiguration(req.Configuration); err != nil {
				return 0, nil, err
			}
			if err := checkTags(req.Tags); err != nil {
				return 0, nil, err
			}
			id, now := newUUID(), ms(s.now())
			_, err := s.db.ExecContext(r.Context(), `INSERT INTO device_groups (group_id, operator_id, configuration, tags, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`,
				id, operator(r), marshalJSON(req.Configuration), marshalJSON(req.Tags), now)
			if err != nil {
				return 0, nil, err
			}
			g, err := s.GetGroup(r.Context(), operator(r), id)
			return http.StatusCreated, g, err
		})})
	rt.Handle(api.Op{Name: "Group:listGroups", Method: "GET", Path: "/v1/groups",
		Summary: "List groups by groupId (tag_name, tag_value, tag_value_match_mode exact|prefix, limit, last_evaluated_key; next key in x-soracom-next-key)",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			q, err := parseListQuery(r, -1)
			if err != nil {
				return 0, nil, err
			}
			out, err := list(r.Context(), s.db, w, q,
				`SELECT `+groupCols+` FROM device_groups WHERE operator_id = $1 AND group_id > $2 ORDER BY group_id`, operator(r),
				func(rows *sql.Rows) (*Group, string, Tags, error) {
					g, err := scanGroup(rows)
					if err != nil {
						return nil, "", nil, err
					}
					return g, g.GroupID, g.Tags, nil
				})
			return http.StatusOK, out, err
		})})
	rt.Handle(api.Op{Name: "Group:getGroup", Method: "GET", Path: "/v1/groups/{group_id}",
		Summary: "Get a group",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			g, err := s.GetGroup(r.Context(), operator(r), r.PathValue("group_id"))
			return http.StatusOK, g, err
		})})
	rt.Handle(api.Op{Name: "Group:deleteGroup", Method: "DELETE", Path: "/v1/groups/{group_id}",
		Summary: "Delete a group; refused (400 BAD0002) while devices or SIMs are still in it — unset their group first",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			op, id := operator(r), r.PathValue("group_id")
			err := s.db.Tx(r.Context(), func(tx *sql.Tx) error {
				if err := s.lockGroup(r.Context(), tx, op, id); err != nil {
					return err
				}
				var devices, sims int
				if err := tx.QueryRowContext(r.Context(), `SELECT
					(SELECT COUNT(*) FROM devices WHERE operator_id = $1 AND group_id = $2),
					(SELECT COUNT(*) FROM sims WHERE operator_id = $1 AND group_id = $2)`, op, id).Scan(&devices, &sims); err != nil {
					return err
				}
				if devices+sims > 0 {
					return api.Invalid("group %s still has %d device(s) and %d SIM(s); unset their group first", id, devices, sims)
				}
				_, err := tx.ExecContext(r.Context(), `DELETE FROM device_groups WHERE operator_id = $1 AND group_id = $2`, op, id)
				return err
			})
			return http.StatusNoContent, nil, err
		})})
	rt.Handle(api.Op{Name: "Group:putConfigurationParameters", Method: "PUT", Path: "/v1/groups/{group_id}/configuration/{namespace}",
		Summary: `Set configuration parameters of one namespace: [{"key":"enabled","value":true}]`,
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			ns := r.PathValue("namespace")
			if err := checkNamespace(ns); err != nil {
				return 0, nil, err
			}
			var params []ConfigParam
			if err := api.DecodeJSON(w, r, &params, false); err != nil {
				return 0, nil, err
			}
			g, err := s.updateGroup(r.Context(), operator(r), r.PathValue("group_id"), func(g *Group) error {
				m := g.Configuration[ns]
				if m == nil {
					m = map[string]json.RawMessage{}
					g.Configuration[ns] = m
				}
				for _, p := range params {
					m[p.Key] = p.Value
				}
				return checkConfiguration(Configuration{ns: m})
			})
			return http.StatusOK, g, err
		})})
	rt.Handle(api.Op{Name: "Group:deleteConfigurationParameter", Method: "DELETE", Path: "/v1/groups/{group_id}/configuration/{namespace}/{name}",
		Summary: "Delete one configuration parameter (404 if the group does not have it)",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			ns, name := r.PathValue("namespace"), r.PathValue("name")
			if err := checkNamespace(ns); err != nil {
				return 0, nil, err
			}
			_, err := s.updateGroup(r.Context(), operator(r), r.PathValue("group_id"), func(g *Group) error {
				if _, ok := g.Configuration[ns][name]; !ok {
					return api.NotFound("group %s has no parameter %s.%s", g.GroupID, ns, name)
				}
				delete(g.Configuration[ns], name)
				if len(g.Configuration[ns]) == 0 {
					delete(g.Configuration, ns)
				}
				return nil
			})
			return http.StatusNoContent, nil, err
		})})
	rt.Handle(api.Op{Name: "Group:putGroupTags", Method: "PUT", Path: "/v1/groups/{group_id}/tags",
		Summary: `Add or replace group tags: [{"tagName":"…","tagValue":"…"}]`,
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			ups, err := decodeTagUpdates(w, r)
			if err != nil {
				return 0, nil, err
			}
			g, err := s.updateGroup(r.Context(), operator(r), r.PathValue("group_id"), func(g *Group) (err error) {
				g.Tags, err = applyTags(g.Tags, ups)
				return err
			})
			return http.StatusOK, g, err
		})})
	rt.Handle(api.Op{Name: "Group:deleteGroupTag", Method: "DELETE", Path: "/v1/groups/{group_id}/tags/{tag_name}",
		Summary: "Delete one group tag (404 if the group has no such tag)",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			name := r.PathValue("tag_name")
			_, err := s.updateGroup(r.Context(), operator(r), r.PathValue("group_id"), func(g *Group) error {
				if _, ok := g.Tags[name]; !ok {
					return api.NotFound("group %s has no tag %q", g.GroupID, name)
				}
				delete(g.Tags, name)
				return nil
			})
			return http.StatusNoContent, nil, err
		})})
}
