package camera

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The soracom driver: a camera whose pictures come from an upstream
// SORACOM-compatible API (SORACOM itself for a real SoraCam, or another
// nagare). An export here becomes an export there; the finished image is
// downloaded and kept here like any other export.

// maxUpstreamImage bounds a downloaded export.
const maxUpstreamImage = 20 << 20

var upstreamClient = &http.Client{Timeout: 15 * time.Second}

type upstreamAPI struct {
	base          string
	apiKey, token string
}

func (s *Service) upstreamLogin(ctx context.Context, c *Camera) (*upstreamAPI, error) {
	cr, err := s.creds.Get(ctx, c.OperatorID, c.Upstream.AuthKeyCredentialsID)
	if err != nil {
		return nil, fmt.Errorf("upstream auth key credential %s: %w", c.Upstream.AuthKeyCredentialsID, err)
	}
	secret := cr.Values["token"]
	if secret == "" {
		secret = cr.Values["key"]
	}
	u := &upstreamAPI{base: strings.TrimRight(c.Upstream.Endpoint, "/")}
	var lr struct{ APIKey, Token string }
	if err := u.call(ctx, "POST", "/v1/auth", map[string]string{"authKeyId": c.Upstream.AuthKeyID, "authKey": secret}, &lr); err != nil {
		return nil, fmt.Errorf("upstream login: %w", err)
	}
	u.apiKey, u.token = lr.APIKey, lr.Token
	return u, nil
}

func (u *upstreamAPI) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if u.apiKey != "" {
		req.Header.Set("X-Soracom-API-Key", u.apiKey)
		req.Header.Set("X-Soracom-Token", u.token)
	}
	res, err := upstreamClient.Do(req)
	if err != nil {
		return &errRetry{fmt.Errorf("upstream %s %s: %w", method, path, err), 3 * time.Second}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return &errRetry{err, 3 * time.Second}
	}
	if res.StatusCode >= 300 {
		e := fmt.Errorf("upstream %s %s: %d %s", method, path, res.StatusCode, strings.TrimSpace(string(b)))
		if res.StatusCode >= 500 || res.StatusCode == 429 {
			return &errRetry{e, 5 * time.Second}
		}
		return e
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (s *Service) upstreamExport(ctx context.Context, c *Camera, r *exportRow) ([]byte, error) {
	u, err := s.upstreamLogin(ctx, c)
	if err != nil {
		return nil, err
	}
	dev := c.Upstream.DeviceID
	if dev == "" {
		dev = c.DeviceID
	}
	var info ExportInfo
	if err := u.call(ctx, "POST", "/v1/sora_cam/devices/"+dev+"/images/exports", map[string]int64{"time": r.capture}, &info); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for info.Status != ExportCompleted {
		if info.Status == ExportFailed || info.Status == ExportExpired || info.Status == "limitExceeded" {
			return nil, fmt.Errorf("upstream export %s %s %s", info.ExportID, info.Status, info.FailureReason)
		}
		if time.Now().After(deadline) {
			return nil, &errRetry{fmt.Errorf("upstream export %s still %s after 60s", info.ExportID, info.Status), 5 * time.Second}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
		if err := u.call(ctx, "GET", "/v1/sora_cam/devices/"+dev+"/images/exports/"+info.ExportID, nil, &info); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, "GET", info.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("upstream export URL: %w", err)
	}
	res, err := upstreamClient.Do(req)
	if err != nil {
		return nil, &errRetry{fmt.Errorf("downloading the upstream export: %w", err), 3 * time.Second}
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("downloading the upstream export: %d", res.StatusCode)
	}
	img, err := io.ReadAll(io.LimitReader(res.Body, maxUpstreamImage+1))
	if err != nil {
		return nil, &errRetry{err, 3 * time.Second}
	}
	if len(img) > maxUpstreamImage {
		return nil, fmt.Errorf("the upstream export is larger than %d bytes", maxUpstreamImage)
	}
	return img, nil
}
