package flow

import (
	"context"
	"errors"
)

// Placeholders replaced by the real implementations in actions_*.go.

func runWebhook(ctx context.Context, c *Call) (any, error) {
	return nil, Permanent(errors.New("webhook action not built yet"))
}
func runAPI(ctx context.Context, c *Call) (any, error) {
	return nil, Permanent(errors.New("api action not built yet"))
}
func runHarvest(ctx context.Context, c *Call) (any, error) {
	return nil, Permanent(errors.New("harvest action not built yet"))
}
func runFiles(ctx context.Context, c *Call) (any, error) {
	return nil, Permanent(errors.New("files action not built yet"))
}
