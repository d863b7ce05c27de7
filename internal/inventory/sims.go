package inventory

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/http"
	"regexp"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/store"
)

// Sim is an entry of nagare's SIM registry: a SORACOM-styled SIM ID and
// the address its device is reached at (remote commands connect to it).
type Sim struct {
	SimID            string `json:"simId"`
	Name             string `json:"name"`
	IPAddress        string `json:"ipAddress"`
	GroupID          string `json:"groupId"`
	Tags             Tags   `json:"tags"`
	CreatedTime      int64  `json:"createdTime"`
	LastModifiedTime int64  `json:"lastModifiedTime"`
}

var (
	simIDRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	hostnameRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
)

// checkAddress accepts an IPv4/IPv6 address or a DNS host name (or "").
func checkAddress(a string) error {
	if a == "" || net.ParseIP(a) != nil || (len(a) <= 253 && hostnameRE.MatchString(a)) {
		return nil
	}
	return api.Invalid("ipAddress %q is neither an IP address nor a host name", a)
}

func checkSimName(n string) error {
	if len(n) > maxField {
		return api.Invalid("name must be at most %d bytes", maxField)
	}
	return nil
}

const simCols = "sim_id, name, ip_address, group_id, tags, created_at, updated_at"

func scanSim(row interface{ Scan(...any) error }) (*Sim, error) {
	var m Sim
	var tags string
	if err := row.Scan(&m.SimID, &m.Name, &m.IPAddress, &m.GroupID, &tags, &m.CreatedTime, &m.LastModifiedTime); err != nil {
		return nil, err
	}
	m.Tags = decodeTags(tags)
	return &m, nil
}

func simNotFound(id string) error { return api.NotFound("SIM %s not found", id) }

// GetSim returns one of the operator's SIMs (404 when absent).
func (s *Service) GetSim(ctx context.Context, operatorID, simID string) (*Sim, error) {
	m, err := scanSim(s.db.QueryRowContext(ctx, `SELECT `+simCols+` FROM sims WHERE operator_id = $1 AND sim_id = $2`, operatorID, simID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, simNotFound(simID)
	}
	return m, err
}

// updateSim applies fn to a SIM under a row lock and saves it.
func (s *Service) updateSim(ctx context.Context, operatorID, id string, fn func(tx *sql.Tx, m *Sim) error) (*Sim, error) {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		m, err := scanSim(tx.QueryRowContext(ctx, `SELECT `+simCols+` FROM sims WHERE operator_id = $1 AND sim_id = $2`+s.forUpdate(), operatorID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return simNotFound(id)
		}
		if err != nil {
			return err
		}
		if err := fn(tx, m); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE sims SET name = $1, ip_address = $2, group_id = $3, tags = $4, updated_at = $5 WHERE operator_id = $6 AND sim_id = $7`,
			m.Name, m.IPAddress, m.GroupID, marshalJSON(m.Tags), ms(s.now()), operatorID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.GetSim(ctx, operatorID, id)
}

type createSimRequest struct {
	SimID     string `json:"simId"`
	Name      string `json:"name"`
	IPAddress string `json:"ipAddress"`
	GroupID   string `json:"groupId"`
	Tags      Tags   `json:"tags"`
}

type updateSimRequest struct {
	Name      *string `json:"name"`
	IPAddress *string `json:"ipAddress"`
}

func (s *Service) registerSims(rt *api.Router) {
	rt.Handle(api.Op{Name: "Sim:createSim", Method: "POST", Path: "/v1/sims",
		Summary: `Register a SIM: {"simId":"[A-Za-z0-9_-]{1,64}","name":"…","ipAddress":"IP or host name"} (optional groupId, tags); 409 if the ID exists`,
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			var req createSimRequest
			if err := api.DecodeJSON(w, r, &req, false); err != nil {
				return 0, nil, err
			}
			if !simIDRE.MatchString(req.SimID) {
				return 0, nil, api.Invalid("simId must be 1 to 64 characters of A-Z a-z 0-9 _ -")
			}
			if req.Tags == nil {
				req.Tags = Tags{}
			}
			for _, err := range []error{checkSimName(req.Name), checkAddress(req.IPAddress), checkTags(req.Tags)} {
				if err != nil {
					return 0, nil, err
				}
			}
			op, now := operator(r), ms(s.now())
			err := s.db.Tx(r.Context(), func(tx *sql.Tx) error {
				if req.GroupID != "" {
					if err := s.lockGroupRef(r.Context(), tx, op, req.GroupID); err != nil {
						return err
					}
				}
				_, err := tx.ExecContext(r.Context(), `INSERT INTO sims (sim_id, operator_id, name, ip_address, group_id, tags, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, req.SimID, op, req.Name, req.IPAddress, req.GroupID, marshalJSON(req.Tags), now)
				if store.IsUniqueViolation(err) {
					return api.Conflict("SIM %s already exists", req.SimID)
				}
				return err
			})
			if err != nil {
				return 0, nil, err
			}
			m, err := s.GetSim(r.Context(), op, req.SimID)
			return http.StatusCreated, m, err
		})})
	rt.Handle(api.Op{Name: "Sim:listSims", Method: "GET", Path: "/v1/sims",
		Summary: "List SIMs by simId (tag_name, tag_value, tag_value_match_mode exact|prefix, limit, last_evaluated_key; next key in x-soracom-next-key)",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			q, err := parseListQuery(r, -1)
			if err != nil {
				return 0, nil, err
			}
			out, err := list(r.Context(), s.db, w, q,
				`SELECT `+simCols+` FROM sims WHERE operator_id = $1 AND sim_id > $2 ORDER BY sim_id`, operator(r),
				func(rows *sql.Rows) (*Sim, string, Tags, error) {
					m, err := scanSim(rows)
					if err != nil {
						return nil, "", nil, err
					}
					return m, m.SimID, m.Tags, nil
				})
			return http.StatusOK, out, err
		})})
	rt.Handle(api.Op{Name: "Sim:getSim", Method: "GET", Path: "/v1/sims/{sim_id}",
		Summary: "Get a SIM",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			m, err := s.GetSim(r.Context(), operator(r), r.PathValue("sim_id"))
			return http.StatusOK, m, err
		})})
	rt.Handle(api.Op{Name: "Sim:updateSim", Method: "PUT", Path: "/v1/sims/{sim_id}",
		Summary: `Change a SIM's name and/or address: {"name":"…","ipAddress":"…"} (absent fields are kept)`,
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			var req updateSimRequest
			if err := api.DecodeJSON(w, r, &req, false); err != nil {
				return 0, nil, err
			}
			m, err := s.updateSim(r.Context(), operator(r), r.PathValue("sim_id"), func(_ *sql.Tx, m *Sim) error {
				if req.Name != nil {
					if err := checkSimName(*req.Name); err != nil {
						return err
					}
					m.Name = *req.Name
				}
				if req.IPAddress != nil {
					if err := checkAddress(*req.IPAddress); err != nil {
						return err
					}
					m.IPAddress = *req.IPAddress
				}
				return nil
			})
			return http.StatusOK, m, err
		})})
	rt.Handle(api.Op{Name: "Sim:deleteSim", Method: "DELETE", Path: "/v1/sims/{sim_id}",
		Summary: "Delete a SIM from the registry (its Harvest data stays)",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			id := r.PathValue("sim_id")
			res, err := s.db.ExecContext(r.Context(), `DELETE FROM sims WHERE operator_id = $1 AND sim_id = $2`, operator(r), id)
			if err != nil {
				return 0, nil, err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return 0, nil, simNotFound(id)
			}
			return http.StatusNoContent, nil, nil
		})})
	registerMemberOps(s, rt, memberKind[*Sim]{
		service: "Sim", noun: "SIM", param: "sim_id", path: "/v1/sims/{sim_id}",
		update: s.updateSim,
	})
}
