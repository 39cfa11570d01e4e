package instance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Log files. Each function's instances write to
// <DataDir>/logs/<function>/current.log; at LogMaxSize it is renamed to
// current.log.1 (older files shift up, the oldest beyond LogMaxFiles is
// deleted). A line reads
//
//	2006-01-02T15:04:05.000000Z <instance id> <stream> <text>
//
// where stream is stdout, stderr or fc (lines fcd writes itself, such as
// the "FC Invoke Start RequestId: <id>" markers).
const (
	logFileName = "current.log"
	logTimeFmt  = "2006-01-02T15:04:05.000000Z"
	// maxLineLen splits longer lines so one runaway write cannot hold
	// memory.
	maxLineLen = 16 << 10
	// tailLines is how many lines an instance keeps for start errors.
	tailLines = 20
	// Lines are buffered per log file and written together, so the FC
	// Invoke markers of a warm request cost no write(2) of their own:
	// when logFlushSize bytes are pending, or logFlushDelay after the
	// first pending line, whichever comes first. Every line of a function
	// (its instances' output and fcd's own) goes through the one buffer,
	// so the file keeps their order. Reads through Manager.ReadLogs flush
	// first; a crash of fcd loses at most logFlushDelay of lines.
	logFlushSize  = 32 << 10
	logFlushDelay = 100 * time.Millisecond
)

// Log streams.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamFC     = "fc"
)

// LogDir is the directory of function's log files under dataDir.
func LogDir(dataDir, function string) (string, error) {
	if function == "" || strings.ContainsAny(function, `/\`) || strings.HasPrefix(function, ".") {
		return "", fmt.Errorf("invalid function name %q", function)
	}
	return filepath.Join(dataDir, "logs", function), nil
}

// logFile is one function's rotating log, shared by its instances.
type logFile struct {
	dir      string
	maxSize  int64
	maxFiles int

	mu    sync.Mutex
	f     *os.File
	size  int64 // of the file, with the pending lines
	buf   []byte
	timer *time.Timer // armed while lines are pending
	refs  int
}

func openLogFile(dir string, maxSize int64, maxFiles int) (*logFile, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	l := &logFile{dir: dir, maxSize: maxSize, maxFiles: maxFiles}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) open() error {
	f, err := os.OpenFile(filepath.Join(l.dir, logFileName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, st.Size()
	return nil
}

// appendLine appends one formatted log line, with its newline, to dst:
// its text is text followed by more.
func appendLine[T string | []byte](dst []byte, t time.Time, id, stream string, text T, more string) []byte {
	dst = appendLogTime(dst, t)
	dst = append(dst, ' ')
	dst = append(dst, id...)
	dst = append(dst, ' ')
	dst = append(dst, stream...)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, more...)
	return append(dst, '\n')
}

// logSecond is the formatted second of the last log line, which the
// lines of a busy instance share: formatting only the microseconds costs
// a tenth of time.Format.
var logSecond atomic.Pointer[struct {
	unix   int64
	prefix string // "2006-01-02T15:04:05."
}]

// appendLogTime appends t in logTimeFmt.
func appendLogTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	sec := logSecond.Load()
	if sec == nil || sec.unix != t.Unix() {
		sec = &struct {
			unix   int64
			prefix string
		}{t.Unix(), t.Truncate(time.Second).Format("2006-01-02T15:04:05.")}
		logSecond.Store(sec)
	}
	dst = append(dst, sec.prefix...)
	us := t.Nanosecond() / 1000
	for div := 100000; div > 0; div /= 10 {
		dst = append(dst, byte('0'+us/div%10))
	}
	return append(dst, 'Z')
}

// writeLine appends one formatted line to the pending lines, rotating
// first when it would pass maxSize. Errors are dropped: a full log disk
// must not fail an instance.
func (l *logFile) writeLine(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	if l.size > 0 && l.size+int64(len(line)) > l.maxSize {
		l.rotate()
		if l.f == nil {
			return
		}
	}
	l.buf = append(l.buf, line...)
	l.size += int64(len(line))
	switch {
	case len(l.buf) >= logFlushSize:
		l.flushLocked()
	case l.timer == nil:
		l.timer = time.AfterFunc(logFlushDelay, l.flush)
	}
}

// flush writes the pending lines.
func (l *logFile) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *logFile) flushLocked() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if len(l.buf) == 0 || l.f == nil {
		return
	}
	_, _ = l.f.Write(l.buf)
	if cap(l.buf) > 4*logFlushSize {
		l.buf = nil // a burst of long lines must not pin its memory
	} else {
		l.buf = l.buf[:0]
	}
}

func (l *logFile) rotate() {
	l.flushLocked()
	l.f.Close()
	l.f = nil
	base := filepath.Join(l.dir, logFileName)
	_ = os.Remove(fmt.Sprintf("%s.%d", base, l.maxFiles))
	for i := l.maxFiles - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", base, i), fmt.Sprintf("%s.%d", base, i+1))
	}
	_ = os.Rename(base, base+".1")
	_ = l.open()
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// logFiles hands out one shared logFile per function.
type logFiles struct {
	dataDir  string
	maxSize  int64
	maxFiles int

	mu    sync.Mutex
	files map[string]*logFile
}

func (s *logFiles) acquire(function string) (*logFile, error) {
	dir, err := LogDir(s.dataDir, function)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.files[function]
	if l == nil {
		if l, err = openLogFile(dir, s.maxSize, s.maxFiles); err != nil {
			return nil, fmt.Errorf("open log of %s: %w", function, err)
		}
		s.files[function] = l
	}
	l.refs++
	return l, nil
}

// flush writes function's pending lines, if its log is open.
func (s *logFiles) flush(function string) {
	s.mu.Lock()
	l := s.files[function]
	s.mu.Unlock()
	if l != nil {
		l.flush()
	}
}

func (s *logFiles) release(function string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.files[function]
	if l == nil {
		return
	}
	if l.refs--; l.refs == 0 {
		l.close()
		delete(s.files, function)
	}
}

// instanceLog writes one instance's lines to its function's log, keeps the
// last few for start errors, and hands each line to the requests that
// collect theirs (RequestLog).
type instanceLog struct {
	file *logFile
	id   string

	mu   sync.Mutex
	tail lineRing
	reqs []*RequestLog // collecting, at most maxRequestLogs

	plain RequestLog // the RequestLog of requests that do not collect
}

func newInstanceLog(file *logFile, id string) *instanceLog {
	il := &instanceLog{file: file, id: id}
	il.plain.il = il
	return il
}

func (il *instanceLog) line(stream string, text []byte) {
	writeLog(il, time.Now(), stream, text, "", nil)
}

// writeLog logs a line of il, at t, whose text is text followed by more; self,
// when not nil, is the RequestLog writing it, which keeps it even when it
// is not among those collecting. A line nobody collects costs no
// allocation: the FC Invoke markers of every warm request come through
// here.
func writeLog[T string | []byte](il *instanceLog, t time.Time, stream string, text T, more string, self *RequestLog) {
	// Most lines fit the stack buffer; writeLine copies what it keeps.
	var stack [256]byte
	b := appendLine(stack[:0], t, il.id, stream, text, more)
	il.file.writeLine(b)
	il.mu.Lock()
	addLine(&il.tail, text, more)
	if len(il.reqs) > 0 || (self != nil && self.collect && !self.registered) {
		line := string(b[:len(b)-1])
		for _, r := range il.reqs {
			r.add(line)
		}
		if self != nil && self.collect && !self.registered {
			self.add(line)
		}
	}
	il.mu.Unlock()
}

func (il *instanceLog) lastLines() []string {
	il.mu.Lock()
	defer il.mu.Unlock()
	return il.tail.lines()
}

// lineRing keeps the texts of the last tailLines lines in buffers it
// reuses, so keeping them allocates nothing once the ring has filled.
type lineRing struct {
	buf  [tailLines][]byte
	next int // where the next line goes
	n    int // lines held
}

func addLine[T string | []byte](r *lineRing, text T, more string) {
	r.buf[r.next] = append(append(r.buf[r.next][:0], text...), more...)
	r.next = (r.next + 1) % tailLines
	r.n = min(r.n+1, tailLines)
}

// lines returns the lines held, oldest first, or nil.
func (r *lineRing) lines() []string {
	if r.n == 0 {
		return nil
	}
	out := make([]string, 0, r.n)
	for i := range r.n {
		out = append(out, string(r.buf[(r.next-r.n+i+tailLines)%tailLines]))
	}
	return out
}

// stream returns a writer that splits its input into lines of stream.
func (il *instanceLog) stream(name string) *lineWriter {
	return &lineWriter{log: il, stream: name}
}

// lineWriter turns a byte stream into log lines. A partial last line is
// kept until its newline arrives or Flush.
type lineWriter struct {
	log    *instanceLog
	stream string
	buf    []byte
}

// testHookLineWrite, when a test sets it, runs before output of instance
// id is written to its log.
var testHookLineWrite func(id string)

func (w *lineWriter) Write(p []byte) (int, error) {
	if testHookLineWrite != nil {
		testHookLineWrite(w.log.id)
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= maxLineLen {
				w.log.line(w.stream, w.buf[:maxLineLen])
				w.buf = append(w.buf[:0], w.buf[maxLineLen:]...)
			}
			break
		}
		line := p[:i]
		if len(w.buf) > 0 {
			line = append(w.buf, line...)
			w.buf = w.buf[:0]
		}
		w.log.line(w.stream, bytes.TrimSuffix(line, []byte("\r")))
		p = p[i+1:]
	}
	return n, nil
}

// Flush writes a pending partial line.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.log.line(w.stream, w.buf)
		w.buf = w.buf[:0]
	}
}

// logPaths lists function's log files, oldest first.
func logPaths(dataDir, function string) ([]string, error) {
	dir, err := LogDir(dataDir, function)
	if err != nil {
		return nil, err
	}
	rotated, err := filepath.Glob(filepath.Join(dir, logFileName+".*"))
	if err != nil {
		return nil, err
	}
	// current.log.N sorts by N descending = oldest first.
	var paths []string
	for i := len(rotated); i >= 1; i-- {
		p := fmt.Sprintf("%s.%d", filepath.Join(dir, logFileName), i)
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	return append(paths, filepath.Join(dir, logFileName)), nil
}

// ReadLogs returns the last tail lines of function's logs under dataDir,
// oldest first; tail <= 0 means all lines. A function that never ran has
// no logs: the result is empty, not an error.
func ReadLogs(dataDir, function string, tail int) ([]string, error) {
	paths, err := logPaths(dataDir, function)
	if err != nil {
		return nil, err
	}
	var lines []string
	// Read newest first and stop once tail lines are collected.
	for i := len(paths) - 1; i >= 0; i-- {
		fl, err := readLines(paths[i])
		if err != nil {
			return nil, err
		}
		lines = append(fl, lines...)
		if tail > 0 && len(lines) >= tail {
			return lines[len(lines)-tail:], nil
		}
	}
	return lines, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 4*maxLineLen)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	return lines, s.Err()
}
