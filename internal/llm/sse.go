package llm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// streamChunk is one "data:" event of a streamed chat completion.
type streamChunk struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content json.RawMessage `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Error json.RawMessage `json:"error"`
}

var (
	dataPrefix = []byte("data:")
	doneMarker = []byte("[DONE]")
)

// readStream reads an OpenAI-style server-sent event stream: each "data: {json}" line carries
// choices[0].delta.content, "data: [DONE]" ends it. Comments (":"), other fields (event:, id:,
// retry:) and blank lines are skipped. An {"error": …} event is an *APIError. A stream that ends
// without [DONE] is accepted if a finish_reason was seen, and is ErrIncomplete otherwise. The text
// received so far is returned with any error.
func readStream(r io.Reader, onDelta func(string)) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 16<<10), MaxLineBytes)
	var text strings.Builder
	finished := false
	// fail prefers the reader's error: a line cut short by it is not the server's fault.
	fail := func(err error) (string, error) {
		if e := sc.Err(); e != nil {
			return text.String(), scanError(e)
		}
		return text.String(), err
	}
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, dataPrefix) {
			continue
		}
		data := bytes.TrimSpace(line[len(dataPrefix):])
		if len(data) == 0 {
			continue
		}
		if bytes.Equal(data, doneMarker) {
			return text.String(), nil
		}
		var ch streamChunk
		if err := json.Unmarshal(data, &ch); err != nil {
			return fail(fmt.Errorf("%w: stream event: %v", ErrMalformed, err))
		}
		if e := bytes.TrimSpace(ch.Error); len(e) > 0 && !bytes.Equal(e, []byte("null")) {
			return fail(streamError(e))
		}
		for _, c := range ch.Choices {
			if c.Index != 0 {
				continue
			}
			d, err := contentText(c.Delta.Content)
			if err != nil {
				return fail(err)
			}
			if d != "" {
				text.WriteString(d)
				onDelta(d)
			}
			if c.FinishReason != nil && *c.FinishReason != "" {
				finished = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return text.String(), scanError(err)
	}
	if finished {
		return text.String(), nil
	}
	return text.String(), fmt.Errorf("%w: %w", ErrIncomplete, io.ErrUnexpectedEOF)
}

func scanError(err error) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("%w: an event line is longer than %d bytes", ErrResponseTooLarge, MaxLineBytes)
	}
	return err
}

// streamError turns the error object of a stream event into an *APIError (HTTP 200: the stream
// had started). Its message is not yet cleaned of the key: Client.wrap's caller does that.
func streamError(raw json.RawMessage) error {
	var we wireError
	if json.Unmarshal(raw, &we) == nil {
		return &rawAPIError{status: http.StatusOK, w: we}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return &rawAPIError{status: http.StatusOK, w: wireError{Message: s}}
	}
	return &rawAPIError{status: http.StatusOK, w: wireError{Message: string(raw)}}
}

// rawAPIError is an API error read by readStream, which has no Client to clean it; Client.wrap
// turns it into a clean *APIError.
type rawAPIError struct {
	status int
	w      wireError
}

func (e *rawAPIError) Error() string { return "llm: API error in stream" }
