package flow

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// runHarvest writes a Harvest Data entry: data (a string as it is,
// anything else as JSON), or the action's input when data is omitted.
func runHarvest(ctx context.Context, c *Call) (any, error) {
	cfg := c.Config
	rtype := cfgString(cfg, "resourceType")
	if rtype == "" {
		rtype = "Device"
	}
	rid := cfgString(cfg, "resourceId")
	if rid == "" {
		return nil, Permanent(errors.New("resourceId is empty"))
	}
	v, ok := cfg["data"]
	if !ok || v == nil {
		v = c.Input
	}
	content, err := payloadBytes(v)
	if err != nil {
		return nil, Permanent(fmt.Errorf("data: %v", err))
	}
	ct := cfgString(cfg, "contentType")
	if ct == "" {
		ct = "application/json"
	}
	if c.Deps == nil || c.Deps.Data == nil {
		return nil, Permanent(errors.New("harvest action: Harvest Data is not configured"))
	}
	t, err := c.Deps.Data.Put(ctx, c.OperatorID, rtype, rid, ct, content, time.Now())
	if err != nil {
		return nil, apiError(fmt.Sprintf("harvest %s/%s", rtype, rid), err)
	}
	return map[string]any{"resourceType": rtype, "resourceId": rid, "time": t.UnixMilli()}, nil
}
