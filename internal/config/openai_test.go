package config_test

import (
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/config"
)

func TestOpenAIEmbeddingDimensions(t *testing.T) {
	load := func(v string) (config.Config, error) {
		env := map[string]string{"OPENAI_EMBEDDING_DIMENSIONS": v}
		return config.Load(func(k string) string { return env[k] }, nil)
	}
	t.Run("UnsetKeepsTheModelsOwn", func(t *testing.T) {
		c, err := load("")
		if err != nil || c.OpenAI.EmbeddingDimensions != 0 {
			t.Fatalf("got %d, %v", c.OpenAI.EmbeddingDimensions, err)
		}
	})
	t.Run("Read", func(t *testing.T) {
		c, err := load("512")
		if err != nil || c.OpenAI.EmbeddingDimensions != 512 {
			t.Fatalf("got %d, %v", c.OpenAI.EmbeddingDimensions, err)
		}
	})
	for _, bad := range []string{"-1", "0", "many"} {
		t.Run("Rejects"+bad, func(t *testing.T) {
			_, err := load(bad)
			if err == nil || !strings.Contains(err.Error(), "OPENAI_EMBEDDING_DIMENSIONS") {
				t.Fatalf("err = %v, want one naming OPENAI_EMBEDDING_DIMENSIONS", err)
			}
		})
	}
}
