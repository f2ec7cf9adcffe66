package openai

import (
	"context"
	"errors"
	"io"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retry"
)

type chat struct{ conn }

// Model names the chat model.
func (m *chat) Model() string { return m.cfg.ChatModel }

// Complete returns the model's answer to msgs.
func (m *chat) Complete(ctx context.Context, msgs []retrieval.ChatMessage) (string, error) {
	var res goopenai.ChatCompletionResponse
	err := m.do(ctx, "chat", m.timeout, func(ctx context.Context) error {
		var err error
		res, err = m.api.CreateChatCompletion(ctx, m.request(msgs, false))
		return err
	})
	if err != nil {
		return "", err
	}
	if len(res.Choices) == 0 {
		return "", apperr.Unavailablef(errors.New("openai: chat: malformed response: no choices"),
			defaultRetryAfter, "OpenAI is unavailable; try again later")
	}
	return res.Choices[0].Message.Content, nil
}

// Stream calls onDelta with each piece of the answer as it arrives. Opening the
// stream is retried like any call; once text has flowed, a failure ends the answer,
// since what the caller already sent cannot be taken back. An error from onDelta
// stops the stream and is returned as it is.
func (m *chat) Stream(ctx context.Context, msgs []retrieval.ChatMessage, onDelta func(string) error) error {
	ctx, cancel := context.WithTimeoutCause(ctx, m.streamTimeout, retry.ErrTimeout)
	defer cancel()
	var stream *goopenai.ChatCompletionStream
	err := m.do(ctx, "chat stream", 0, func(ctx context.Context) error {
		var err error
		stream, err = m.api.CreateChatCompletionStream(ctx, m.request(msgs, true))
		return err
	})
	if err != nil {
		return err
	}
	defer stream.Close()
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return m.mapError(ctx, "chat stream", err, 0)
		}
		if len(chunk.Choices) == 0 || chunk.Choices[0].Delta.Content == "" {
			continue
		}
		if err := onDelta(chunk.Choices[0].Delta.Content); err != nil {
			return err
		}
	}
}

func (m *chat) request(msgs []retrieval.ChatMessage, stream bool) goopenai.ChatCompletionRequest {
	req := goopenai.ChatCompletionRequest{Model: m.cfg.ChatModel, Stream: stream}
	for _, msg := range msgs {
		req.Messages = append(req.Messages, goopenai.ChatCompletionMessage{Role: msg.Role, Content: msg.Content})
	}
	return req
}
