// Package coretest builds the platform core for package tests that must not
// import the whole server (flow and vision: the server imports them): a
// real database, the credentials store, auth with a bootstrapped operator,
// Harvest Files on a file blob store, and an API router serving them.
package coretest

import (
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/auth"
	"github.com/nagare-iot/nagare/internal/blob"
	"github.com/nagare-iot/nagare/internal/credentials"
	"github.com/nagare-iot/nagare/internal/harvest"
	"github.com/nagare-iot/nagare/internal/store"
	"github.com/nagare-iot/nagare/internal/store/storetest"
)

// Env is the platform core of one test.
type Env struct {
	DB         *store.DB
	OperatorID string
	Auth       *auth.Service
	Creds      *credentials.Service
	Blobs      *blob.Store
	Files      *harvest.Files
	Router     *api.Router // auth, Files and credentials operations registered
}

// New builds an Env whose Harvest Files accept files up to maxFileBytes.
func New(t testing.TB, maxFileBytes int64) *Env {
	t.Helper()
	ctx := t.Context()
	db := storetest.Open(t)
	dir := t.TempDir()
	kr, _, err := credentials.OpenKeyring(ctx, db, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	au := auth.New(db, time.Hour)
	op, err := au.Bootstrap(ctx, auth.BootstrapOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st, err := blob.Open(ctx, "file://"+dir+"/files", dir, kr.Derive("signed-urls"), "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &Env{DB: db, OperatorID: op, Auth: au, Creds: credentials.New(db, kr), Blobs: st,
		Files:  harvest.NewFiles(st, harvest.FilesOptions{MaxFileBytes: maxFileBytes, SignedURLTTL: time.Minute}),
		Router: api.NewRouter(au, nil)}
	au.Register(e.Router)
	e.Files.Register(e.Router)
	e.Creds.Register(e.Router)
	return e
}
