package async

import (
	"encoding/base64"
	"time"

	"github.com/fcd-dev/fcd/api"
)

// Event is one asynchronous invocation as the queue stores it.
type Event struct {
	Function string `json:"function"`
	// Qualifier is what the invocation runs: a version id or an alias,
	// resolved when each attempt runs; "" means LATEST. Records written
	// before qualifiers existed have none, and run LATEST as they did.
	Qualifier string `json:"qualifier,omitempty"`
	// ID is the caller's task id, or RequestID when none was given.
	ID string `json:"id"`
	// RequestID is the x-fc-request-id of the 202 and of every attempt.
	RequestID string `json:"requestId"`
	// Task says whether GetAsyncTask and ListAsyncTasks show the event:
	// the caller gave a task id or the function's asyncTask was on.
	Task    bool   `json:"task"`
	Payload []byte `json:"payload"`
	State   string `json:"state"`
	// Attempts counts the attempts begun: each time the event was sent to
	// an instance, and each start failure.
	Attempts int `json:"attempts"`
	// Interrupted counts the attempts a restart of fcd cut short; they
	// are among Attempts and may or may not have reached the function.
	Interrupted int `json:"interrupted,omitempty"`
	// Throttles counts the consecutive throttled tries, for back-off.
	Throttles  int       `json:"throttles,omitempty"`
	Created    time.Time `json:"created"`
	Started    time.Time `json:"started,omitzero"`
	Ended      time.Time `json:"ended,omitzero"`
	Due        time.Time `json:"due"`
	InstanceID string    `json:"instanceId,omitempty"`
	// Result is the last attempt's response body, bounded by MaxResult.
	Result []byte `json:"result,omitempty"`
	// Error is the last attempt's error.
	Error string `json:"error,omitempty"`
	// Destination is "Succeeded" once the outcome was enqueued to a
	// destination function.
	Destination string `json:"destination,omitempty"`
	History     []Step `json:"history"`
}

// Step is one transition of an event.
type Step struct {
	State  string    `json:"state"`
	Time   time.Time `json:"time"`
	Detail string    `json:"detail,omitempty"`
}

// MaxResult bounds the response body kept with an event.
const MaxResult = 16 << 10

// ended reports whether state is an end state.
func ended(state string) bool {
	switch state {
	case api.TaskSucceeded, api.TaskFailed, api.TaskStopped, api.TaskExpired:
		return true
	}
	return false
}

// QualifierOrLatest returns the event's qualifier as FC shows it: LATEST
// when it has none.
func (e *Event) QualifierOrLatest() string {
	if e.Qualifier == "" {
		return api.QualifierLatest
	}
	return e.Qualifier
}

// Done reports whether the event reached an end state.
func (e *Event) Done() bool { return ended(e.State) }

func (e *Event) step(state string, now time.Time, detail string) {
	e.State = state
	e.History = append(e.History, Step{State: state, Time: now, Detail: detail})
	if ended(state) {
		e.Ended = now
	}
}

// AsyncTask returns the event as GetAsyncTask shows it. arn is its function's.
func (e *Event) AsyncTask(arn string, payload bool) *api.AsyncTask {
	t := &api.AsyncTask{
		TaskID: e.ID, RequestID: e.RequestID, FunctionArn: arn, Qualifier: e.QualifierOrLatest(),
		Status: e.State, StartedTime: e.Created.UnixMilli(), InstanceID: e.InstanceID,
		TaskErrorMessage: e.Error, DestinationStatus: e.Destination,
		Events: make([]*api.AsyncTaskEvent, 0, len(e.History)),
	}
	if e.Attempts > 0 {
		t.AlreadyRetriedTimes = int64(e.Attempts - 1)
	}
	if !e.Ended.IsZero() {
		t.EndTime = e.Ended.UnixMilli()
		t.DurationMs = e.Ended.Sub(e.Created).Milliseconds()
	}
	if payload {
		t.TaskPayload = base64.StdEncoding.EncodeToString(e.Payload)
	}
	if e.State == api.TaskSucceeded {
		t.ReturnPayload = string(e.Result)
	}
	for i, s := range e.History {
		t.Events = append(t.Events, &api.AsyncTaskEvent{EventID: int64(i + 1), Status: s.State, Timestamp: s.Time.UnixMilli(), EventDetail: s.Detail})
	}
	return t
}
