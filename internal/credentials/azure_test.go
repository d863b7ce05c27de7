package credentials_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nagare-iot/nagare/internal/servertest"
)

// Azurite's well-known development account key (public, not a secret).
const azuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// azure-storage (the flow blob action's Azure credential) takes an account
// name with an access key or a SAS token, or a connection string; a bad
// combination is a 400 naming the fields, never echoing a value.
func TestAzureStorageCredential(t *testing.T) {
	ts := servertest.Start(t)
	c := ts.Root
	good := map[string]map[string]any{
		"key": {"accountName": "soracamstorage001", "accountKey": azuriteKey},
		"sas": {"accountName": "soracamstorage001", "sasToken": "sv=2024-11-04&ss=b&srt=co&sp=cw&sig=abc%3D"},
		"cs": {"connectionString": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + azuriteKey +
			";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"},
		"cs-sas": {"connectionString": "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2024&sig=x"},
	}
	for id, vals := range good {
		if res := c.Do("POST", "/v1/credentials/az-"+id, map[string]any{"type": "azure-storage", "credentials": vals}); res.Status != 201 {
			t.Errorf("%s: %d %s", id, res.Status, res.Body)
		} else if strings.Contains(string(res.Body), "Eby8vdM02") {
			t.Errorf("%s: the key is in the answer: %s", id, res.Body)
		}
	}
	cred, err := ts.Credentials.Get(context.Background(), ts.OperatorID, "az-key")
	if err != nil || cred.Type != "azure-storage" || cred.Values["accountKey"] != azuriteKey {
		t.Fatalf("get: %+v %v", cred, err)
	}

	bad := []struct {
		name   string
		vals   map[string]any
		naming []string
	}{
		{"nothing", map[string]any{}, []string{"credentials.accountName is required", "credentials.accountKey (or sasToken) is required"}},
		{"no key", map[string]any{"accountName": "a"}, []string{"credentials.accountKey (or sasToken) is required"}},
		{"no name", map[string]any{"accountKey": azuriteKey}, []string{"credentials.accountName is required"}},
		{"key and sas", map[string]any{"accountName": "a", "accountKey": azuriteKey, "sasToken": "sig=x"}, []string{"accountKey or sasToken, not both"}},
		{"key not base64", map[string]any{"accountName": "a", "accountKey": "not*base64!"}, []string{"credentials.accountKey is not base64"}},
		{"cs and key", map[string]any{"connectionString": "AccountName=a;AccountKey=" + azuriteKey, "accountKey": azuriteKey}, []string{"either connectionString or accountName"}},
		{"cs without key", map[string]any{"connectionString": "DefaultEndpointsProtocol=https;AccountName=a;EndpointSuffix=core.windows.net"}, []string{"neither AccountKey nor SharedAccessSignature"}},
		{"cs without name", map[string]any{"connectionString": "AccountKey=" + azuriteKey}, []string{"no AccountName"}},
		{"unknown field", map[string]any{"accountName": "a", "accountKey": azuriteKey, "container": "x"}, []string{"credentials.container is not a field of type azure-storage"}},
	}
	for _, tc := range bad {
		res := c.Do("POST", "/v1/credentials/az-bad", map[string]any{"type": "azure-storage", "credentials": tc.vals})
		if res.Status != 400 {
			t.Errorf("%s: %d %s", tc.name, res.Status, res.Body)
			continue
		}
		for _, s := range tc.naming {
			if !strings.Contains(string(res.Body), s) {
				t.Errorf("%s: %s does not mention %q", tc.name, res.Body, s)
			}
		}
		if strings.Contains(string(res.Body), "Eby8vdM02") {
			t.Errorf("%s: the key is in the error: %s", tc.name, res.Body)
		}
	}
}
