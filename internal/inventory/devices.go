package inventory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/auth"
)

// Device is a SORACOM Inventory device.
type Device struct {
	DeviceID         string                     `json:"device_id"`
	OperatorID       string                     `json:"operatorId"`
	GroupID          string                     `json:"groupId"`
	Endpoint         string                     `json:"endpoint"`
	IPAddress        string                     `json:"ipAddress"`
	Manufacturer     string                     `json:"manufacturer"`
	ModelNumber      string                     `json:"modelNumber"`
	SerialNumber     string                     `json:"serialNumber"`
	FirmwareVersion  string                     `json:"firmwareVersion"`
	Online           bool                       `json:"online"`
	LastModifiedTime string                     `json:"lastModifiedTime"`
	Tags             Tags                       `json:"tags"`
	Objects          map[string]json.RawMessage `json:"objects"`

	groupConfig Configuration // loaded by AuthenticateDevice; nil otherwise
}

// deviceAttrs is what the devices.attributes column holds.
type deviceAttrs struct {
	Endpoint        string                     `json:"endpoint,omitempty"`
	IPAddress       string                     `json:"ipAddress,omitempty"`
	Manufacturer    string                     `json:"manufacturer,omitempty"`
	ModelNumber     string                     `json:"modelNumber,omitempty"`
	SerialNumber    string                     `json:"serialNumber,omitempty"`
	FirmwareVersion string                     `json:"firmwareVersion,omitempty"`
	Objects         map[string]json.RawMessage `json:"objects,omitempty"`
}

func (d *Device) attrs() deviceAttrs {
	return deviceAttrs{d.Endpoint, d.IPAddress, d.Manufacturer, d.ModelNumber, d.SerialNumber, d.FirmwareVersion, d.Objects}
}

// createDeviceRequest is the SORACOM Device schema. Fields the server
// owns (device_id, operatorId, online, times, registration) are accepted
// so a Device document can be sent back as is, and ignored.
type createDeviceRequest struct {
	deviceAttrs
	GroupID string `json:"groupId"`
	Tags    Tags   `json:"tags"`

	DeviceID               json.RawMessage `json:"device_id"`
	OperatorID             json.RawMessage `json:"operatorId"`
	Online                 json.RawMessage `json:"online"`
	LastModifiedTime       json.RawMessage `json:"lastModifiedTime"`
	LastRegistrationUpdate json.RawMessage `json:"lastRegistrationUpdate"`
	RegistrationID         json.RawMessage `json:"registrationId"`
	RegistrationLifeTime   json.RawMessage `json:"registrationLifeTime"`
}

func (a deviceAttrs) check() error {
	for name, v := range map[string]string{"endpoint": a.Endpoint, "ipAddress": a.IPAddress, "manufacturer": a.Manufacturer,
		"modelNumber": a.ModelNumber, "serialNumber": a.SerialNumber, "firmwareVersion": a.FirmwareVersion} {
		if len(v) > maxField {
			return api.Invalid("%s must be at most %d bytes", name, maxField)
		}
	}
	if len(marshalJSON(a.Objects)) > 64<<10 {
		return api.Invalid("objects must be at most 64KiB of JSON")
	}
	return nil
}

// DeviceWithSecret is the answer to createDevice: the device and its
// secret, which is shown only this once.
type DeviceWithSecret struct {
	*Device
	DeviceSecret string `json:"deviceSecret"`
}

const deviceCols = "device_id, operator_id, group_id, attributes, tags, updated_at"

func scanDevice(row interface{ Scan(...any) error }, extra ...any) (*Device, error) {
	var d Device
	var attrs, tags string
	var updated int64
	if err := row.Scan(append([]any{&d.DeviceID, &d.OperatorID, &d.GroupID, &attrs, &tags, &updated}, extra...)...); err != nil {
		return nil, err
	}
	var a deviceAttrs
	_ = json.Unmarshal([]byte(attrs), &a)
	d.Endpoint, d.IPAddress, d.Manufacturer, d.ModelNumber, d.SerialNumber, d.FirmwareVersion =
		a.Endpoint, a.IPAddress, a.Manufacturer, a.ModelNumber, a.SerialNumber, a.FirmwareVersion
	d.Objects = a.Objects
	if d.Objects == nil {
		d.Objects = map[string]json.RawMessage{}
	}
	d.Tags = decodeTags(tags)
	d.LastModifiedTime = time.UnixMilli(updated).UTC().Format(time.RFC3339)
	return &d, nil
}

func deviceNotFound(id string) error { return api.NotFound("device %s not found", id) }

// GetDevice returns one of the operator's devices (404 when absent).
func (s *Service) GetDevice(ctx context.Context, operatorID, id string) (*Device, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE operator_id = $1 AND device_id = $2`, operatorID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, deviceNotFound(id)
	}
	return d, err
}

func secretError(status int, msg string) error {
	return api.Errorf(status, api.CodeDeviceSecret, "%s", msg)
}

// authQuery loads a device with its secret hash and its group's
// configuration (empty when the device has no group or the group is gone).
const authQuery = `SELECT d.device_id, d.operator_id, d.group_id, d.attributes, d.tags, d.updated_at, d.secret_hash, COALESCE(g.configuration, '')
	FROM devices d LEFT JOIN device_groups g ON g.operator_id = d.operator_id AND g.group_id = d.group_id
	WHERE d.device_id = $1`

// authStmt prepares authQuery once (device publish runs it on every call).
func (s *Service) authStmt(ctx context.Context) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auth == nil {
		st, err := s.db.PrepareContext(ctx, authQuery)
		if err != nil {
			return nil, err
		}
		s.auth = st
	}
	return s.auth, nil
}

// AuthenticateDevice checks a device secret. A missing secret is a 401; a
// wrong one and an unknown device are the same 403, so device IDs cannot
// be probed. The device comes with its group's configuration, so
// HarvestEnabled needs no further query.
func (s *Service) AuthenticateDevice(ctx context.Context, deviceID, secret string) (*Device, error) {
	if secret == "" {
		return nil, secretError(http.StatusUnauthorized, "a device secret is required: pass it as the device_secret query parameter or the X-Device-Secret header")
	}
	st, err := s.authStmt(ctx)
	if err != nil {
		return nil, err
	}
	var hash, conf string
	d, err := scanDevice(st.QueryRowContext(ctx, deviceID), &hash, &conf)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if !auth.SecretMatches(secret, hash) || d == nil {
		return nil, secretError(http.StatusForbidden, "unknown device or wrong device secret")
	}
	d.groupConfig = Configuration{}
	_ = json.Unmarshal([]byte(conf), &d.groupConfig)
	return d, nil
}

// HarvestEnabled reports whether Harvest Data is on for a device: its
// group's SoracomHarvest.enabled is true. A device without a group (or
// whose group is gone) has Harvest off.
func (s *Service) HarvestEnabled(ctx context.Context, d *Device) (bool, error) {
	if d.GroupID == "" {
		return false, nil
	}
	conf := d.groupConfig
	if conf == nil {
		g, err := s.GetGroup(ctx, d.OperatorID, d.GroupID)
		if isNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		conf = g.Configuration
	}
	return conf.Enabled(NamespaceHarvest), nil
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// CreateDevice registers a device and returns it with its new secret.
func (s *Service) CreateDevice(ctx context.Context, operatorID string, a deviceAttrs, groupID string, tags Tags) (*DeviceWithSecret, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	if tags == nil {
		tags = Tags{}
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	id := "d-" + auth.RandomString(20, idAlphabet)
	secret := auth.NewSecret("")
	now := ms(s.now())
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if groupID != "" {
			if err := s.lockGroupRef(ctx, tx, operatorID, groupID); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO devices (device_id, operator_id, group_id, secret_hash, attributes, tags, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, id, operatorID, groupID, auth.HashSecret(secret), marshalJSON(a), marshalJSON(tags), now)
		return err
	})
	if err != nil {
		return nil, err
	}
	d, err := s.GetDevice(ctx, operatorID, id)
	if err != nil {
		return nil, err
	}
	return &DeviceWithSecret{Device: d, DeviceSecret: secret}, nil
}

// updateDevice applies fn to a device under a row lock and saves it.
func (s *Service) updateDevice(ctx context.Context, operatorID, id string, fn func(tx *sql.Tx, d *Device) error) (*Device, error) {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		d, err := scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE operator_id = $1 AND device_id = $2`+s.forUpdate(), operatorID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return deviceNotFound(id)
		}
		if err != nil {
			return err
		}
		if err := fn(tx, d); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE devices SET group_id = $1, attributes = $2, tags = $3, updated_at = $4 WHERE operator_id = $5 AND device_id = $6`,
			d.GroupID, marshalJSON(d.attrs()), marshalJSON(d.Tags), ms(s.now()), operatorID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.GetDevice(ctx, operatorID, id)
}

// IssueDeviceSecret replaces a device's secret; the old one stops working.
func (s *Service) IssueDeviceSecret(ctx context.Context, operatorID, id string) (string, error) {
	secret := auth.NewSecret("")
	res, err := s.db.ExecContext(ctx, `UPDATE devices SET secret_hash = $1, updated_at = $2 WHERE operator_id = $3 AND device_id = $4`,
		auth.HashSecret(secret), ms(s.now()), operatorID, id)
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", deviceNotFound(id)
	}
	return secret, nil
}

type setGroupRequest struct {
	GroupID string `json:"groupId"`
}

func (s *Service) registerDevices(rt *api.Router) {
	rt.Handle(api.Op{Name: "Device:createDevice", Method: "POST", Path: "/v1/devices",
		Summary: "Register an Inventory device (optional body: a Device document); answers the device and its deviceSecret, shown only once",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			var req createDeviceRequest
			if err := api.DecodeJSON(w, r, &req, true); err != nil {
				return 0, nil, err
			}
			d, err := s.CreateDevice(r.Context(), operator(r), req.deviceAttrs, req.GroupID, req.Tags)
			return http.StatusCreated, d, err
		})})
	rt.Handle(api.Op{Name: "Device:listDevices", Method: "GET", Path: "/v1/devices",
		Summary: "List devices by device_id (tag_name, tag_value, tag_value_match_mode exact|prefix, limit, last_evaluated_key; next key in x-soracom-next-key)",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			q, err := parseListQuery(r, -1)
			if err != nil {
				return 0, nil, err
			}
			out, err := list(r.Context(), s.db, w, q,
				`SELECT `+deviceCols+` FROM devices WHERE operator_id = $1 AND device_id > $2 ORDER BY device_id`, operator(r),
				func(rows *sql.Rows) (*Device, string, Tags, error) {
					d, err := scanDevice(rows)
					if err != nil {
						return nil, "", nil, err
					}
					return d, d.DeviceID, d.Tags, nil
				})
			return http.StatusOK, out, err
		})})
	rt.Handle(api.Op{Name: "Device:getDevice", Method: "GET", Path: "/v1/devices/{device_id}",
		Summary: "Get a device",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			d, err := s.GetDevice(r.Context(), operator(r), r.PathValue("device_id"))
			return http.StatusOK, d, err
		})})
	rt.Handle(api.Op{Name: "Device:deleteDevice", Method: "DELETE", Path: "/v1/devices/{device_id}",
		Summary: "Delete a device (its Harvest data stays)",
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			id := r.PathValue("device_id")
			res, err := s.db.ExecContext(r.Context(), `DELETE FROM devices WHERE operator_id = $1 AND device_id = $2`, operator(r), id)
			if err != nil {
				return 0, nil, err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return 0, nil, deviceNotFound(id)
			}
			return http.StatusNoContent, nil, nil
		})})
	registerMemberOps(s, rt, memberKind[*Device]{
		service: "Device", noun: "device", param: "device_id", path: "/v1/devices/{device_id}",
		update: s.updateDevice,
	})
	rt.Handle(api.Op{Name: "Device:issueDeviceSecret", Method: "POST", Path: "/v1/devices/{device_id}/secret",
		Summary: `Issue a new device secret ({"deviceSecret":"…"}, shown once); the old secret stops working`,
		Handler: handler(func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			secret, err := s.IssueDeviceSecret(r.Context(), operator(r), r.PathValue("device_id"))
			return http.StatusOK, map[string]string{"deviceSecret": secret}, err
		})})
}
