package auth

import "github.com/nagare-iot/nagare/internal/api"

// registerUsers mounts the SAM user, auth key, password and permission
// operations under /v1/operators/{operator_id}.
func (s *Service) registerUsers(rt *api.Router) {}
