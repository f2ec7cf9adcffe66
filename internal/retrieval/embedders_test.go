package retrieval_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retrieval/retrievaltest"
	"github.com/cairn-dev/cairn/internal/secretbox"
)

// fakeEndpoint stands in for a workspace's endpoint; the choice is only validated
// and stored here, never called.
func fakeEndpoint(_, _ string, _ int, _, name string) retrieval.Embedder {
	return retrieval.NewLocalEmbedder(16)
}

func TestChooseEmbedderRefusesWhatCannotWork(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	box, err := secretbox.New(bytes.Repeat([]byte{1}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	withKey := retrieval.NewService(retrieval.Options{Pool: pool, Plans: plan.Default(), Box: box, Custom: fakeEndpoint})
	noKey := retrieval.NewService(retrieval.Options{Pool: pool, Plans: plan.Default(), Custom: fakeEndpoint})
	c := retrievaltest.NewWorkspace(t, pool)
	good := retrieval.EmbedderChoice{Provider: retrieval.ProviderCustom, BaseURL: "https://embed.example.com/v1", Model: "m", APIKey: "sk-1"}
	with := func(f func(*retrieval.EmbedderChoice)) retrieval.EmbedderChoice {
		ch := good
		f(&ch)
		return ch
	}
	cases := []struct {
		name   string
		svc    *retrieval.Service
		choice retrieval.EmbedderChoice
		field  string
	}{
		{"UnknownProvider", withKey, retrieval.EmbedderChoice{Provider: "magic"}, "provider"},
		{"ServerOpenAIWithoutAServerKey", withKey, retrieval.EmbedderChoice{Provider: retrieval.ProviderOpenAI}, "provider"},
		{"NotAURL", withKey, with(func(c *retrieval.EmbedderChoice) { c.BaseURL = "embed.example.com" }), "base_url"},
		{"NotHTTP", withKey, with(func(c *retrieval.EmbedderChoice) { c.BaseURL = "file:///etc/passwd" }), "base_url"},
		{"CredentialsInTheURL", withKey, with(func(c *retrieval.EmbedderChoice) { c.BaseURL = "https://u:p@embed.example.com/v1" }), "base_url"},
		{"NoModel", withKey, with(func(c *retrieval.EmbedderChoice) { c.Model = " " }), "model"},
		{"TooManyDimensions", withKey, with(func(c *retrieval.EmbedderChoice) { c.Dimensions = 9000 }), "dimensions"},
		{"NoKeyForANewEndpoint", withKey, with(func(c *retrieval.EmbedderChoice) { c.APIKey = "" }), "api_key"},
		{"NoEncryptionKeyOnTheServer", noKey, good, "api_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.svc.ChooseEmbedder(context.Background(), c, tc.choice)
			e := apperr.As(err)
			if e == nil || e.Code != apperr.Invalid || e.Field != tc.field {
				t.Fatalf("ChooseEmbedder = %v; want invalid %s", err, tc.field)
			}
			st, err := tc.svc.Embedder(context.Background(), c)
			if err != nil || st.Provider != retrieval.ProviderBuiltin || st.Pending != nil {
				t.Fatalf("a refused choice changed the embedder: %+v, %v", st, err)
			}
		})
	}

	t.Run("AnEmptyWorkspaceSwitchesAtOnce", func(t *testing.T) {
		if err := withKey.ChooseEmbedder(context.Background(), c, good); err != nil {
			t.Fatal(err)
		}
		st, err := withKey.Embedder(context.Background(), c)
		if err != nil || st.Provider != retrieval.ProviderCustom || st.Pending != nil || !st.KeyStored || st.BaseURL != good.BaseURL {
			t.Fatalf("after choosing on an empty workspace: %+v, %v", st, err)
		}
		// The same endpoint again without a key keeps the stored one.
		if err := withKey.ChooseEmbedder(context.Background(), c, with(func(c *retrieval.EmbedderChoice) { c.APIKey = "" })); err != nil {
			t.Fatalf("re-saving the endpoint without its key: %v", err)
		}
	})
	t.Run("ServerOpenAIOnAFreePlan", func(t *testing.T) {
		// Needs a server key and a plan that includes it; Free does not.
		free := c
		free.Plan = plan.Free
		svc := retrieval.NewService(retrieval.Options{Pool: pool, Plans: plan.Default(), OpenAI: nil})
		if err := svc.ChooseEmbedder(context.Background(), free, retrieval.EmbedderChoice{Provider: retrieval.ProviderOpenAI}); apperr.As(err) == nil {
			t.Fatalf("the server's OpenAI model without a server key: %v", err)
		}
	})
}
