package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

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
	// Guessing gets slower with every miss (see throttle.go): while an
	// account or address must wait, not even the right password is checked.
	account, addr := req.accountKey(), api.ClientAddr(r)
	if wait := s.throttle.wait(s.now(), account, addr); wait > 0 {
		slog.Warn("login throttled", "kind", strings.SplitN(account, ":", 2)[0], "client", addr, "retry_after", api.RetryAfter(wait))
		api.WriteError(w, r, api.TooManyRequests(wait, "too many failed logins for this account or from this address; try again in %s", api.RetryAfter(wait)))
		return
	}
	resp, err := s.Login(r.Context(), req)
	var ae *api.Error
	switch {
	case errors.As(err, &ae) && ae.Code == api.CodeLoginFailed:
		s.throttle.failed(s.now(), account, addr)
	case err == nil:
		s.throttle.succeeded(account)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, resp)
}
