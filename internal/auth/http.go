package auth

import (
	"net/http"

	"github.com/nagare-iot/nagare/internal/api"
)

// Register mounts the auth operations.
func (s *Service) Register(rt *api.Router) {
	rt.Handle(api.Op{Name: "Auth:auth", Method: "POST", Path: "/v1/auth", Auth: api.AuthNone,
		Summary: "Log in with an auth key, email/password or operatorId+userName+password; returns apiKey and token",
		Handler: s.handleAuth})
	rt.Handle(api.Op{Name: "Auth:logout", Method: "POST", Path: "/v1/auth/logout",
		Summary: "Revoke the API key and token used for this call",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			if err := s.Logout(r.Context(), api.PrincipalFrom(r.Context()).APIKey); err != nil {
				api.WriteError(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}})
	s.registerUsers(rt)
}

func (s *Service) handleAuth(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if err := api.DecodeJSON(w, r, &req, false); err != nil {
		api.WriteError(w, r, err)
		return
	}
	resp, err := s.Login(r.Context(), req)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, resp)
}
