package api

import (
	"regexp"
	"strings"
	"time"
)

// Limits and defaults of asynchronous invocation, FC's values.
const (
	DefaultMaxAsyncRetryAttempts     = 3
	MaxAsyncRetryAttempts            = 8
	DefaultMaxAsyncEventAgeInSeconds = 86400
	MaxAsyncEventAgeInSeconds        = 604800
	// MaxAsyncPayload bounds the event of an asynchronous invocation.
	MaxAsyncPayload = 128 << 10
)

// Async task states, as GetAsyncTask reports them.
const (
	TaskEnqueued  = "Enqueued"
	TaskRunning   = "Running"
	TaskRetrying  = "Retrying"
	TaskStopping  = "Stopping"
	TaskSucceeded = "Succeeded"
	TaskFailed    = "Failed"
	TaskStopped   = "Stopped"
	TaskExpired   = "Expired"
)

// AsyncConfigInput is PutAsyncInvokeConfig's body. Nil fields take their
// defaults.
type AsyncConfigInput struct {
	AsyncTask                 *bool              `json:"asyncTask,omitempty"`
	DestinationConfig         *DestinationConfig `json:"destinationConfig,omitempty"`
	MaxAsyncEventAgeInSeconds *int64             `json:"maxAsyncEventAgeInSeconds,omitempty"`
	MaxAsyncRetryAttempts     *int64             `json:"maxAsyncRetryAttempts,omitempty"`
}

// AsyncConfig is a function's asynchronous invocation configuration, as
// GetAsyncInvokeConfig returns it, with every default filled in.
type AsyncConfig struct {
	AsyncTask                 bool               `json:"asyncTask"`
	DestinationConfig         *DestinationConfig `json:"destinationConfig,omitempty"`
	FunctionArn               string             `json:"functionArn"`
	MaxAsyncEventAgeInSeconds int64              `json:"maxAsyncEventAgeInSeconds"`
	MaxAsyncRetryAttempts     int64              `json:"maxAsyncRetryAttempts"`
	CreatedTime               string             `json:"createdTime"`
	LastModifiedTime          string             `json:"lastModifiedTime"`
}

// DefaultAsyncConfig is the configuration of a function that has none.
func DefaultAsyncConfig() AsyncConfig {
	return AsyncConfig{MaxAsyncEventAgeInSeconds: DefaultMaxAsyncEventAgeInSeconds, MaxAsyncRetryAttempts: DefaultMaxAsyncRetryAttempts}
}

// DestinationConfig names the functions an event's outcome is sent to.
type DestinationConfig struct {
	OnSuccess *Destination `json:"onSuccess,omitempty"`
	OnFailure *Destination `json:"onFailure,omitempty"`
}

// Destination is another function, by ARN
// (acs:fc:<region>:<account>:functions/<name>[/<qualifier>]) or by name.
type Destination struct {
	Destination string `json:"destination"`
}

// FunctionARN is the ARN of function name: acs:fc:<region>:<account>:functions/<name>.
func FunctionARN(region, account, name string) string {
	return "acs:fc:" + region + ":" + account + ":functions/" + name
}

// DestinationFunction returns the function a destination names: the part
// after "functions/" of an ARN, without a qualifier, or the whole string.
func DestinationFunction(dest string) string {
	name, _ := destination(dest)
	return name
}

// DestinationQualifier returns the qualifier a destination's ARN ends
// with (".../functions/<name>/<qualifier>"), "" when it names none.
func DestinationQualifier(dest string) string {
	_, q := destination(dest)
	return q
}

func destination(dest string) (name, qualifier string) {
	if i := strings.LastIndex(dest, ":functions/"); i >= 0 {
		dest = dest[i+len(":functions/"):]
	}
	name, qualifier, _ = strings.Cut(dest, "/")
	return name, qualifier
}

// AsyncConfig validates in and returns the configuration it sets for
// function arn at now, keeping prev's creation time when there is one.
// Errors are *InvalidError.
func (in *AsyncConfigInput) AsyncConfig(arn string, prev *AsyncConfig, now time.Time) (AsyncConfig, error) {
	c := DefaultAsyncConfig()
	c.FunctionArn = arn
	if in.AsyncTask != nil {
		c.AsyncTask = *in.AsyncTask
	}
	if v := in.MaxAsyncRetryAttempts; v != nil {
		if *v < 0 || *v > MaxAsyncRetryAttempts {
			return c, invalid("maxAsyncRetryAttempts %d is out of range: 0..%d", *v, MaxAsyncRetryAttempts)
		}
		c.MaxAsyncRetryAttempts = *v
	}
	if v := in.MaxAsyncEventAgeInSeconds; v != nil {
		if *v < 1 || *v > MaxAsyncEventAgeInSeconds {
			return c, invalid("maxAsyncEventAgeInSeconds %d is out of range: 1..%d", *v, MaxAsyncEventAgeInSeconds)
		}
		c.MaxAsyncEventAgeInSeconds = *v
	}
	if dc := in.DestinationConfig; dc != nil {
		for _, d := range []*Destination{dc.OnSuccess, dc.OnFailure} {
			if d == nil {
				continue
			}
			if err := ValidateFunctionName(DestinationFunction(d.Destination)); err != nil {
				return c, invalid("destination %q must name an fcd function (acs:fc:<region>:<account>:functions/<name>): %v", d.Destination, err)
			}
		}
		if dc.OnSuccess != nil || dc.OnFailure != nil {
			c.DestinationConfig = dc
		}
	}
	ts := Timestamp(now)
	c.CreatedTime, c.LastModifiedTime = ts, ts
	if prev != nil && prev.CreatedTime != "" {
		c.CreatedTime = prev.CreatedTime
	}
	return c, nil
}

var taskIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidateTaskID checks a caller-given async task id (x-fc-async-task-id):
// 1-128 letters, digits, '_' or '-'.
func ValidateTaskID(id string) error {
	if !taskIDRE.MatchString(id) {
		return invalid("async task id %q is invalid: use 1-128 letters, digits, '_' or '-'", id)
	}
	return nil
}

// AsyncTask is one asynchronous invocation as GetAsyncTask and
// ListAsyncTasks return it. Times are Unix milliseconds.
type AsyncTask struct {
	TaskID              string            `json:"taskId"`
	RequestID           string            `json:"requestId"`
	FunctionArn         string            `json:"functionArn"`
	Qualifier           string            `json:"qualifier"`
	Status              string            `json:"status"`
	StartedTime         int64             `json:"startedTime"`
	EndTime             int64             `json:"endTime,omitempty"`
	DurationMs          int64             `json:"durationMs"`
	AlreadyRetriedTimes int64             `json:"alreadyRetriedTimes"`
	InstanceID          string            `json:"instanceId,omitempty"`
	TaskErrorMessage    string            `json:"taskErrorMessage,omitempty"`
	TaskPayload         string            `json:"taskPayload,omitempty"`
	ReturnPayload       string            `json:"returnPayload,omitempty"`
	DestinationStatus   string            `json:"destinationStatus,omitempty"`
	Events              []*AsyncTaskEvent `json:"events"`
}

// AsyncTaskEvent is one step in a task's life: a state it entered, when,
// and the error of the attempt that led there.
type AsyncTaskEvent struct {
	EventID     int64  `json:"eventId"`
	Status      string `json:"status"`
	Timestamp   int64  `json:"timestamp"`
	EventDetail string `json:"eventDetail,omitempty"`
}
