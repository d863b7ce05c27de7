package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/nagare-iot/nagare/internal/api"
)

// MaxAPIResponseBytes bounds the answer of an api action (SORACOM Flux's
// limit); a longer one fails the action.
const MaxAPIResponseBytes = 32768

// rootOnlyServices are the services flows may not call: their operations
// belong to the operator's root account (logins, the operator, its keys).
var rootOnlyServices = []string{"Auth:", "Operator:"}

func runAPI(ctx context.Context, c *Call) (any, error) {
	cfg := c.Config
	opName := cfgString(cfg, "operation")
	user := cfgString(cfg, "user")
	for _, p := range rootOnlyServices {
		if strings.HasPrefix(opName, p) {
			return nil, Permanent(fmt.Errorf("operation %s belongs to the root account; flows cannot call %s* operations", opName, p))
		}
	}
	if user == "" {
		// An empty user name is the root account: never for flows.
		return nil, Permanent(errors.New("user is required: flows call the API as a SAM user"))
	}
	if c.Deps == nil || c.Deps.Router == nil {
		return nil, Permanent(errors.New("api action: no API router is configured"))
	}
	var query url.Values
	if q := cfgStrings(cfg, "query"); len(q) > 0 {
		query = url.Values{}
		for k, v := range q {
			query.Set(k, v)
		}
	}
	var body []byte
	if v, ok := cfg["body"]; ok && v != nil {
		b, err := marshalJSON(v)
		if err != nil {
			return nil, Permanent(fmt.Errorf("body: %v", err))
		}
		body = b
	}
	p := &api.Principal{OperatorID: c.OperatorID, UserName: user}
	status, hdr, b, err := c.Deps.Router.InvokeLimit(ctx, p, opName, cfgStrings(cfg, "path"), query, body, MaxAPIResponseBytes)
	if errors.Is(err, api.ErrResponseTooLarge) {
		return nil, Permanent(fmt.Errorf("%s: the response exceeds %d bytes", opName, MaxAPIResponseBytes))
	}
	if err != nil {
		return nil, apiError(opName, err)
	}
	if status >= 400 {
		msg := fmt.Sprintf("%s as user %s: %d", opName, user, status)
		if t := apiErrorText(b); t != "" {
			msg += " " + t
		}
		e := &httpStatusError{Status: status, msg: msg}
		if retryableStatus(status) {
			return nil, e
		}
		return nil, Permanent(e)
	}
	if len(b) == 0 {
		if loc := hdr.Get("Location"); loc != "" && status >= 300 {
			// A redirect (a file download, say): where it points.
			return map[string]any{"status": status, "location": loc}, nil
		}
		return nil, nil
	}
	return parseBody(hdr.Get("Content-Type"), b), nil
}

// apiErrorText renders an API error body ({"code","message"}), or the
// start of a body of another shape.
func apiErrorText(b []byte) string {
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Code != "" {
		return e.Code + ": " + e.Message
	}
	return strings.TrimPrefix(quoteBody(b), ": ")
}
