package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nagare-iot/nagare/internal/shadow"
)

// Shadows is what the shadow action needs of the shadow service: apply an
// AWS update request document and get the /update/accepted document.
type Shadows interface {
	Update(ctx context.Context, op, thing, name string, req []byte) ([]byte, error)
}

func init() {
	RegisterAction(Spec{Kind: "shadow", Run: runShadow,
		Summary: "Updates a device shadow as an AWS IoT update request (see shadows.md): desired and reported merge into the document, `null` deletes a key or a whole section; MQTT subscribers get accepted, delta and documents as for any update. Output: the accepted document `{state, metadata, version, timestamp, clientToken}`.",
		Fields: []Field{
			{Name: "thingName", Type: TTemplate, Required: true, Doc: "thing name (1-128 of a-z A-Z 0-9 : _ -)"},
			{Name: "shadowName", Type: TTemplate, Doc: "named shadow; omitted or empty: the classic shadow"},
			{Name: "desired", Type: TAny, Doc: "merged into state.desired; `null` deletes the section"},
			{Name: "reported", Type: TAny, Doc: "merged into state.reported; `null` deletes the section"},
			{Name: "version", Type: TTemplate, Doc: "the version the shadow must have (optimistic locking; a mismatch fails the action with 409); empty: no check"},
			{Name: "clientToken", Type: TTemplate, Doc: "echoed in the accepted document and the MQTT messages (at most 64 bytes)"},
		},
		Check: func(cfg map[string]any) []string {
			_, d := cfg["desired"]
			_, r := cfg["reported"]
			if !d && !r {
				return []string{"needs desired or reported (or both)"}
			}
			return nil
		},
	})
}

func runShadow(ctx context.Context, c *Call) (any, error) {
	cfg := c.Config
	thing, name := cfgString(cfg, "thingName"), cfgString(cfg, "shadowName")
	if thing == "" {
		return nil, Permanent(errors.New("thingName is empty"))
	}
	state := map[string]any{}
	for _, k := range []string{"desired", "reported"} {
		if v, ok := cfg[k]; ok {
			state[k] = v
		}
	}
	req := map[string]any{"state": state}
	if v := cfgString(cfg, "version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, Permanent(fmt.Errorf("version: %q is not a whole number", v))
		}
		req["version"] = n
	}
	if t := cfgString(cfg, "clientToken"); t != "" {
		req["clientToken"] = t
	}
	body, err := marshalJSON(req)
	if err != nil {
		return nil, Permanent(fmt.Errorf("shadow request: %v", err))
	}
	if c.Deps == nil || c.Deps.Shadows == nil {
		return nil, Permanent(errors.New("shadow action: device shadows are not configured"))
	}
	// The change this makes reaches shadow sources with this run's hop
	// count, so an app updating the shadow it listens to stops at the limit.
	out, err := c.Deps.Shadows.Update(shadow.WithHop(ctx, causeHop(ctx)+1), c.OperatorID, thing, name, body)
	if err != nil {
		what := "shadow " + thing
		if name != "" {
			what += "/" + name
		}
		return nil, apiError(what, err)
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("shadow answer: %w", err)
	}
	return v, nil
}
