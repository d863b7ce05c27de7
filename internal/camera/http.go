package camera

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/credentials"
	"github.com/nagare-iot/nagare/internal/harvest"
)

// Register mounts the SoraCam-style API and the remote-command snapshot.
func (s *Service) Register(rt *api.Router) {
	for _, op := range []api.Op{
		{Name: "SoraCam:listSoraCamDevices", Method: "GET", Path: "/v1/sora_cam/devices", Summary: "List cameras (SoraCamDevice)", Handler: s.listDevices},
		{Name: "SoraCam:createSoraCamDevice", Method: "POST", Path: "/v1/sora_cam/devices", Summary: "Register a camera: deviceId, name, rtspUrl, credentialsId, recording, retentionDays, snapshotCache (nagare's own)", Handler: s.createDevice},
		{Name: "SoraCam:getSoraCamDevice", Method: "GET", Path: "/v1/sora_cam/devices/{device_id}", Summary: "Get a camera", Handler: s.getDevice},
		{Name: "SoraCam:updateSoraCamDevice", Method: "PUT", Path: "/v1/sora_cam/devices/{device_id}", Summary: "Change a camera's settings (nagare's own)", Handler: s.updateDevice},
		{Name: "SoraCam:deleteSoraCamDevice", Method: "DELETE", Path: "/v1/sora_cam/devices/{device_id}", Summary: "Remove a camera; its recordings are deleted by retention (nagare's own)", Handler: s.deleteDevice},
		{Name: "SoraCam:getSoraCamDeviceSnapshot", Method: "GET", Path: "/v1/sora_cam/devices/{device_id}/snapshot", Summary: "The camera's current picture as JPEG (warm from the session's cache, else a cold grab; nagare's own)", Handler: s.snapshot},
		{Name: "SoraCam:exportSoraCamDeviceRecordedImage", Method: "POST", Path: "/v1/sora_cam/devices/{device_id}/images/exports", Summary: "Export the picture at a moment as a JPEG (asynchronous)", Handler: s.createExport},
		{Name: "SoraCam:getSoraCamDeviceExportedImage", Method: "GET", Path: "/v1/sora_cam/devices/{device_id}/images/exports/{export_id}", Summary: "Get an image export", Handler: s.getExport},
		{Name: "SoraCam:listSoraCamDeviceImageExportsForDevice", Method: "GET", Path: "/v1/sora_cam/devices/{device_id}/images/exports", Summary: "List a camera's image exports", Handler: s.listExports(true)},
		{Name: "SoraCam:listSoraCamDeviceImageExports", Method: "GET", Path: "/v1/sora_cam/devices/images/exports", Summary: "List image exports of all cameras (?device_id=)", Handler: s.listExports(false)},
		{Name: "SoraCam:listSoraCamDeviceRecordingsAndEvents", Method: "GET", Path: "/v1/sora_cam/devices/{device_id}/recordings_and_events", Summary: "Recorded periods of a camera (?from=&to= ms)", Handler: s.recordings},
		{Name: "Sim:sendDownlinkRtsp", Method: "POST", Path: "/v1/sims/{sim_id}/downlink/rtsp", Summary: "Take a snapshot from the RTSP server at a SIM's address (remote command)", Handler: s.downlinkRTSP},
	} {
		rt.Handle(op)
	}
}

func operator(r *http.Request) string { return api.PrincipalFrom(r.Context()).OperatorID }

// DeviceView is SoraCamDevice plus nagare's settings.
type DeviceView struct {
	DeviceID           string          `json:"deviceId"`
	Name               string          `json:"name"`
	ProductDisplayName string          `json:"productDisplayName"`
	FirmwareVersion    string          `json:"firmwareVersion"`
	DeviceCategory     string          `json:"deviceCategory"`
	Connected          bool            `json:"connected"`
	LastConnectedTime  int64           `json:"lastConnectedTime,omitempty"`
	PowerState         string          `json:"powerState"`
	IsShared           bool            `json:"isShared"`
	Configuration      map[string]bool `json:"configuration"`
	AppliedLicenses    []License       `json:"appliedLicenses,omitempty"`

	Driver        string    `json:"driver"`
	RTSPURL       string    `json:"rtspUrl,omitempty"`
	CredentialsID string    `json:"credentialsId,omitempty"`
	Recording     bool      `json:"recording"`
	RetentionDays int       `json:"retentionDays"`
	SnapshotCache bool      `json:"snapshotCache"`
	Upstream      *Upstream `json:"upstream,omitempty"`
	Session       *struct {
		Connected  bool   `json:"connected"`
		LastError  string `json:"lastError,omitempty"`
		Reconnects int    `json:"reconnects"`
	} `json:"session,omitempty"`
	// SessionNode is the node running the camera's session and recorder
	// (nagare's own; several nodes share cameras through leases).
	SessionNode string `json:"sessionNode,omitempty"`
}

// License is SoraCam's appliedLicenses entry.
type License struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (s *Service) view(c *Camera, detail bool) *DeviceView {
	v := &DeviceView{DeviceID: c.DeviceID, Name: c.Name, ProductDisplayName: "RTSP camera", FirmwareVersion: "nagare",
		DeviceCategory: "Camera", PowerState: "on", LastConnectedTime: c.LastConnected,
		Configuration: map[string]bool{"audioAlarmEnabled": false, "motionDetectionEnabled": false, "smokeAlarmEnabled": false},
		Driver:        c.Driver, RTSPURL: c.RTSPURL, CredentialsID: c.CredentialsID, Recording: c.Recording,
		RetentionDays: c.RetentionDays, SnapshotCache: c.SnapshotCache, Upstream: c.Upstream}
	if c.Driver == "soracom" {
		v.ProductDisplayName = "SoraCam (via " + c.Upstream.Endpoint + ")"
	}
	if ls := s.session(c.OperatorID, c.DeviceID); ls != nil {
		st := ls.s.Status()
		v.Connected = st.Connected
		v.Session = &struct {
			Connected  bool   `json:"connected"`
			LastError  string `json:"lastError,omitempty"`
			Reconnects int    `json:"reconnects"`
		}{st.Connected, st.LastError, st.Reconnects}
		if st.Connected {
			v.LastConnectedTime = s.now().UnixMilli()
		}
	}
	if ls := s.session(c.OperatorID, c.DeviceID); ls != nil {
		v.SessionNode = s.opts.Node
	} else if detail && s.leaser != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v.SessionNode, _ = s.leaser.Holder(ctx, leaseKey(c.OperatorID, c.DeviceID))
		cancel()
	}
	if detail && c.Recording {
		v.AppliedLicenses = []License{{Name: "Continuous Recording (" + strconv.Itoa(c.RetentionDays) + " Days)", Value: "storage_life=" + strconv.Itoa(c.RetentionDays)}}
	}
	return v
}

func (s *Service) listDevices(w http.ResponseWriter, r *http.Request) {
	cams, err := s.list(r.Context(), operator(r))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	out := make([]*DeviceView, 0, len(cams))
	for _, c := range cams {
		out = append(out, s.view(c, false))
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (s *Service) createDevice(w http.ResponseWriter, r *http.Request) {
	var in CameraInput
	if err := api.DecodeJSON(w, r, &in, false); err != nil {
		api.WriteError(w, r, err)
		return
	}
	c, err := s.create(r.Context(), operator(r), &in)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, s.view(c, true))
}

func (s *Service) getDevice(w http.ResponseWriter, r *http.Request) {
	c, err := s.Get(r.Context(), operator(r), r.PathValue("device_id"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, s.view(c, true))
}

func (s *Service) updateDevice(w http.ResponseWriter, r *http.Request) {
	var in CameraInput
	if err := api.DecodeJSON(w, r, &in, false); err != nil {
		api.WriteError(w, r, err)
		return
	}
	c, err := s.update(r.Context(), operator(r), r.PathValue("device_id"), &in)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, s.view(c, true))
}

func (s *Service) deleteDevice(w http.ResponseWriter, r *http.Request) {
	if err := s.delete(r.Context(), operator(r), r.PathValue("device_id")); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJPEG(w http.ResponseWriter, img []byte, at time.Time) {
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(img)))
	if !at.IsZero() {
		w.Header().Set("X-Nagare-Capture-Time", strconv.FormatInt(at.UnixMilli(), 10))
	}
	_, _ = w.Write(img)
}

func (s *Service) snapshot(w http.ResponseWriter, r *http.Request) {
	c, err := s.Get(r.Context(), operator(r), r.PathValue("device_id"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if c.Driver != "rtsp" {
		api.WriteError(w, r, api.Errorf(422, api.CodeInvalid, "live snapshots need the rtsp driver; export an image instead"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RTSP.Timeout+5*time.Second)
	defer cancel()
	img, at, err := s.Snapshot(ctx, c)
	if err != nil {
		api.WriteError(w, r, snapshotError(err))
		return
	}
	writeJPEG(w, img, at)
}

func (s *Service) createExport(w http.ResponseWriter, r *http.Request) {
	c, err := s.Get(r.Context(), operator(r), r.PathValue("device_id"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var req ExportRequest
	if err := api.DecodeJSON(w, r, &req, false); err != nil {
		api.WriteError(w, r, err)
		return
	}
	info, err := s.CreateExport(r.Context(), c, &req)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, info)
}

func (s *Service) getExport(w http.ResponseWriter, r *http.Request) {
	info, err := s.Export(r.Context(), operator(r), r.PathValue("device_id"), r.PathValue("export_id"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, info)
}

func (s *Service) listExports(perDevice bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, err := api.QueryInt(r, "limit", 10, 1, 1000)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		q := r.URL.Query()
		sort := q.Get("sort")
		if sort != "" && sort != "asc" && sort != "desc" {
			api.WriteError(w, r, api.Invalid("sort %q must be asc or desc", sort))
			return
		}
		device := q.Get("device_id")
		if perDevice {
			device = r.PathValue("device_id")
			if _, err := s.Get(r.Context(), operator(r), device); err != nil {
				api.WriteError(w, r, err)
				return
			}
		}
		out, next, err := s.Exports(r.Context(), operator(r), device, int(limit), sort == "asc", q.Get("last_evaluated_key"))
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		if next != "" {
			w.Header().Set("x-soracom-next-key", next)
		}
		api.WriteJSON(w, http.StatusOK, out)
	}
}

func (s *Service) recordings(w http.ResponseWriter, r *http.Request) {
	c, err := s.Get(r.Context(), operator(r), r.PathValue("device_id"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	now := s.now().UnixMilli()
	from, err := api.QueryInt(r, "from", now-24*3600_000, 0, 1<<62)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	to, err := api.QueryInt(r, "to", now, 0, 1<<62)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	recs, err := s.rec.Periods(r.Context(), c, from, to)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"records": recs, "events": []any{}})
}

// DownlinkRTSP is SimDownlinkRtspRequest.
type DownlinkRTSP struct {
	Command        string `json:"command"`
	Port           *int   `json:"port"`
	Path           string `json:"path"`
	Authentication *struct {
		Type                  string `json:"type"`
		Username              string `json:"username"`
		Password              string `json:"password"`
		PasswordCredentialsID string `json:"passwordCredentialsId"`
	} `json:"authentication"`
	Options *struct {
		Destinations *struct {
			HarvestFiles *struct {
				FilePath string `json:"filePath"`
			} `json:"harvestFiles"`
		} `json:"destinations"`
	} `json:"options"`
}

// downlinkRTSP takes a snapshot from the RTSP server at the SIM's address,
// within 10 s, and answers the JPEG (or, with a Harvest Files
// destination, the stored file's entry).
func (s *Service) downlinkRTSP(w http.ResponseWriter, r *http.Request) {
	var req DownlinkRTSP
	if err := api.DecodeJSON(w, r, &req, false); err != nil {
		api.WriteError(w, r, err)
		return
	}
	op := operator(r)
	var problems []string
	if req.Command != "snapshot" {
		problems = append(problems, "command must be \"snapshot\"")
	}
	port := 554
	if req.Port != nil {
		port = *req.Port
		if port < 1 || port > 65535 {
			problems = append(problems, "port must be 1-65535")
		}
	}
	if req.Path != "" && !strings.HasPrefix(req.Path, "/") {
		problems = append(problems, "path must start with /")
	}
	var user *url.Userinfo
	if a := req.Authentication; a != nil {
		switch a.Type {
		case "", "none":
		case "basic":
			if a.Username == "" {
				problems = append(problems, "authentication.username is required for basic")
			}
			pw := a.Password
			if a.PasswordCredentialsID != "" {
				cr, err := s.creds.Get(r.Context(), op, a.PasswordCredentialsID)
				switch {
				case errors.Is(err, credentials.ErrNotFound):
					problems = append(problems, "authentication.passwordCredentialsId: no credential "+strconv.Quote(a.PasswordCredentialsID))
				case err != nil:
					api.WriteError(w, r, err)
					return
				case cr.Type != "psk":
					// SORACOM takes the password from a pre-shared key.
					problems = append(problems, fmt.Sprintf("authentication.passwordCredentialsId: credential %q is of type %s; the RTSP password must be a psk credential", a.PasswordCredentialsID, cr.Type))
				default:
					pw = cr.Values["key"]
				}
			}
			user = url.UserPassword(a.Username, pw)
		default:
			problems = append(problems, "authentication.type must be none or basic")
		}
	}
	var filePath string
	if o := req.Options; o != nil && o.Destinations != nil && o.Destinations.HarvestFiles != nil {
		filePath = o.Destinations.HarvestFiles.FilePath
		if filePath == "" {
			problems = append(problems, "options.destinations.harvestFiles.filePath is required")
		} else if _, err := harvest.CleanPath(strings.NewReplacer("{sim_id}", "x", "{time}", "0").Replace(filePath), false); err != nil {
			// Checked before the camera is contacted.
			problems = append(problems, "options.destinations.harvestFiles.filePath: "+err.Error())
		}
	}
	if len(problems) > 0 {
		api.WriteError(w, r, api.Invalid("%s", strings.Join(problems, "; ")))
		return
	}
	sim, err := s.inv.GetSim(r.Context(), op, r.PathValue("sim_id"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if sim.IPAddress == "" {
		api.WriteError(w, r, api.Errorf(422, api.CodeInvalid, "SIM %s has no IP address to connect to (set ipAddress with PUT /v1/sims/%s)", sim.SimID, sim.SimID))
		return
	}
	u := &url.URL{Scheme: "rtsp", Host: net.JoinHostPort(sim.IPAddress, strconv.Itoa(port)), Path: req.Path, User: user}
	// The whole command, decoding included, within SORACOM's 10 s.
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	img, at, err := s.grab(ctx, u.String())
	if err != nil {
		api.WriteError(w, r, snapshotError(err))
		return
	}
	if filePath == "" {
		writeJPEG(w, img, at)
		return
	}
	p := strings.NewReplacer("{sim_id}", sim.SimID, "{time}", strconv.FormatInt(at.UnixMilli(), 10)).Replace(filePath)
	entry, _, err := s.files.Put(r.Context(), op, p, "image/jpeg", bytes.NewReader(img))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(entry)
}
