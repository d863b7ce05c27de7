package inventory

import (
	"context"
	"database/sql"
	"net/http"

	"github.com/nagare-iot/nagare/internal/api"
)

// member is what devices and SIMs share: they join a group and carry tags.
type member interface {
	membership() (groupID *string, tags *Tags)
	*Device | *Sim
}

func (d *Device) membership() (*string, *Tags) { return &d.GroupID, &d.Tags }
func (m *Sim) membership() (*string, *Tags)    { return &m.GroupID, &m.Tags }

// memberKind describes one kind of group member for registerMemberOps.
type memberKind[T member] struct {
	service string // "Device" → Device:setDeviceGroup, …
	noun    string // for messages: "device", "SIM"
	param   string // path parameter holding the ID
	path    string // the member's URL, e.g. /v1/devices/{device_id}
	update  func(ctx context.Context, operatorID, id string, fn func(*sql.Tx, T) error) (T, error)
}

// registerMemberOps mounts set_group, unset_group, tags and tag deletion,
// which devices and SIMs offer alike.
func registerMemberOps[T member](s *Service, rt *api.Router, k memberKind[T]) {
	svc := k.service
	rt.Handle(api.Op{Name: svc + ":set" + svc + "Group", Method: "POST", Path: k.path + "/set_group",
		Summary: `Put a ` + k.noun + ` in a group: {"groupId":"…"} (404 if the ` + k.noun + ` or group does not exist)`,
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			var req setGroupRequest
			if err := api.DecodeJSON(w, r, &req, false); err != nil {
				return 0, nil, err
			}
			if req.GroupID == "" {
				return 0, nil, api.Invalid("groupId is required")
			}
			op := operator(r)
			v, err := k.update(r.Context(), op, r.PathValue(k.param), func(tx *sql.Tx, v T) error {
				if err := s.lockGroup(r.Context(), tx, op, req.GroupID); err != nil {
					return err
				}
				g, _ := v.membership()
				*g = req.GroupID
				return nil
			})
			return http.StatusOK, v, err
		})})
	rt.Handle(api.Op{Name: svc + ":unset" + svc + "Group", Method: "POST", Path: k.path + "/unset_group",
		Summary: "Take a " + k.noun + " out of its group",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			v, err := k.update(r.Context(), operator(r), r.PathValue(k.param), func(_ *sql.Tx, v T) error {
				g, _ := v.membership()
				*g = ""
				return nil
			})
			return http.StatusOK, v, err
		})})
	rt.Handle(api.Op{Name: svc + ":put" + svc + "Tags", Method: "PUT", Path: k.path + "/tags",
		Summary: `Add or replace ` + k.noun + ` tags: [{"tagName":"…","tagValue":"…"}]`,
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			ups, err := decodeTagUpdates(w, r)
			if err != nil {
				return 0, nil, err
			}
			v, err := k.update(r.Context(), operator(r), r.PathValue(k.param), func(_ *sql.Tx, v T) (err error) {
				_, tags := v.membership()
				*tags, err = applyTags(*tags, ups)
				return err
			})
			return http.StatusOK, v, err
		})})
	rt.Handle(api.Op{Name: svc + ":delete" + svc + "Tag", Method: "DELETE", Path: k.path + "/tags/{tag_name}",
		Summary: "Delete one " + k.noun + " tag (404 if the " + k.noun + " has no such tag)",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			name, id := r.PathValue("tag_name"), r.PathValue(k.param)
			_, err := k.update(r.Context(), operator(r), id, func(_ *sql.Tx, v T) error {
				_, tags := v.membership()
				if _, ok := (*tags)[name]; !ok {
					return api.NotFound("%s %s has no tag %q", k.noun, id, name)
				}
				delete(*tags, name)
				return nil
			})
			return http.StatusNoContent, nil, err
		})})
}
