package audience

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// A source yields a trigger's recipients a batch at a time from a cursor
// (an opaque string stored with the trigger), so that a fan-out can stop
// anywhere and resume there.
type source interface {
	next(ctx context.Context) (batch, error)
	close()
}

// batch is one page of resolved recipients.
type batch struct {
	items []recipient
	// errs are per-recipient problems ("line 3: ...").
	errs []string
	// missing counts unknown recipients that were ignored as asked.
	missing int
	cursor  string
	done    bool
}

// recipient is a person with their addresses and their own trigger data.
type recipient struct {
	store.Recipient
	data map[string]any
}

// RecipientStore is what sources read.
type RecipientStore interface {
	ListRecipients(ctx context.Context, q store.RecipientQuery) ([]store.Recipient, error)
}

// filterSource walks the people a filter matches in id order; the cursor
// is the last id returned.
type filterSource struct {
	st       RecipientStore
	q        store.RecipientQuery
	finished bool
}

func (s *filterSource) next(ctx context.Context) (batch, error) {
	if s.finished {
		return batch{cursor: s.q.After, done: true}, nil
	}
	page, err := s.st.ListRecipients(ctx, s.q)
	if err != nil {
		return batch{}, err
	}
	b := batch{items: make([]recipient, len(page))}
	for i, r := range page {
		b.items[i] = recipient{Recipient: r}
	}
	if len(page) > 0 {
		s.q.After = page[len(page)-1].Person.ID
	}
	b.cursor = s.q.After
	b.done = len(page) < s.q.Limit
	s.finished = b.done
	return b, nil
}

func (s *filterSource) close() {}

// ref is a recipient named by id or email, with a label for its errors.
type ref struct {
	UserData
	label string
}

// resolver turns refs into recipients with the trigger's missing and
// duplicate rules: an unknown id or email is an error unless ignored; an
// email shared by several people is an error unless duplicates are added,
// in which case each of them is a recipient.
type resolver struct {
	st       RecipientStore
	ws       string
	channels []string
	req      *TriggerRequest
}

func (r *resolver) resolve(ctx context.Context, refs []ref) ([]recipient, []string, int, error) {
	var ids, emails []string
	for _, rf := range refs {
		if rf.ID != "" {
			ids = append(ids, rf.ID)
		} else {
			emails = append(emails, strings.ToLower(strings.TrimSpace(rf.Email)))
		}
	}
	byID := map[string]store.Recipient{}
	byEmail := map[string][]store.Recipient{}
	if len(ids) > 0 {
		found, err := r.st.ListRecipients(ctx, store.RecipientQuery{WorkspaceID: r.ws, IDs: ids, Channels: r.channels})
		if err != nil {
			return nil, nil, 0, err
		}
		for _, rc := range found {
			byID[rc.Person.ID] = rc
		}
	}
	if len(emails) > 0 {
		found, err := r.st.ListRecipients(ctx, store.RecipientQuery{WorkspaceID: r.ws, Emails: emails, Channels: r.channels})
		if err != nil {
			return nil, nil, 0, err
		}
		for _, rc := range found {
			byEmail[rc.Person.Email] = append(byEmail[rc.Person.Email], rc)
		}
	}
	var out []recipient
	var errs []string
	missing := 0
	for _, rf := range refs {
		if rf.ID != "" {
			rc, ok := byID[rf.ID]
			switch {
			case ok:
				out = append(out, recipient{Recipient: rc, data: rf.Data})
			case r.req.IDIgnoreMissing:
				missing++
			default:
				errs = append(errs, fmt.Sprintf("%s: no person with id %q", rf.label, rf.ID))
			}
			continue
		}
		matches := byEmail[strings.ToLower(strings.TrimSpace(rf.Email))]
		switch {
		case len(matches) == 0 && r.req.EmailIgnoreMissing:
			missing++
		case len(matches) == 0:
			errs = append(errs, fmt.Sprintf("%s: no person with email %q", rf.label, rf.Email))
		case len(matches) > 1 && !r.req.EmailAddDuplicates:
			errs = append(errs, fmt.Sprintf("%s: email %q belongs to %d people (set email_add_duplicates to send to all of them)",
				rf.label, rf.Email, len(matches)))
		default:
			for _, rc := range matches {
				out = append(out, recipient{Recipient: rc, data: rf.Data})
			}
		}
	}
	return out, errs, missing, nil
}

// listSource walks ids, emails or per_user_data; the cursor is the index
// of the next item.
type listSource struct {
	res   resolver
	refs  []ref
	pos   int
	limit int
}

func newListSource(res resolver, req *TriggerRequest, cursor string, limit int) (*listSource, error) {
	pos := 0
	if cursor != "" {
		var err error
		if pos, err = strconv.Atoi(cursor); err != nil {
			return nil, fmt.Errorf("bad list cursor %q", cursor)
		}
	}
	var refs []ref
	for i, id := range req.IDs {
		refs = append(refs, ref{UserData{ID: id}, "ids/" + strconv.Itoa(i)})
	}
	for i, e := range req.Emails {
		refs = append(refs, ref{UserData{Email: e}, "emails/" + strconv.Itoa(i)})
	}
	for i, u := range req.PerUserData {
		refs = append(refs, ref{u, "per_user_data/" + strconv.Itoa(i)})
	}
	return &listSource{res: res, refs: refs, pos: min(pos, len(refs)), limit: limit}, nil
}

func (s *listSource) next(ctx context.Context) (batch, error) {
	end := min(s.pos+s.limit, len(s.refs))
	items, errs, missing, err := s.res.resolve(ctx, s.refs[s.pos:end])
	if err != nil {
		return batch{}, err
	}
	s.pos = end
	return batch{items: items, errs: errs, missing: missing, cursor: strconv.Itoa(end), done: end == len(s.refs)}, nil
}

func (s *listSource) close() {}

// ErrDataFile is wrapped by failures to fetch a data file.
var ErrDataFile = errors.New("data file")

// fetchError is a data file failure; permanent ones (an HTTP error status,
// a refused address) fail the trigger at once.
type fetchError struct {
	msg       string
	permanent bool
}

func (e *fetchError) Error() string { return e.msg }
func (e *fetchError) Unwrap() error { return ErrDataFile }

// fileLimits bound the work of a data file. A step ends after batch
// recipients, stepLines lines or stepBytes bytes, whichever comes first,
// so that every step commits progress even through a long run of blank or
// invalid lines; the whole file is bounded by maxBytes, maxLines and a
// deadline.
type fileLimits struct {
	batch     int
	stepLines int
	stepBytes int64
	maxLine   int
	maxBytes  int64
	maxLines  int
	// deadline is when reading the file must have ended (zero: none);
	// now reads the clock it is compared with.
	deadline time.Time
	now      func() time.Time
}

// fileSource streams a JSON Lines data file; the cursor is the number of
// lines consumed. Resuming fetches the file again and skips that many
// lines: a data file is read once per job, never stored.
type fileSource struct {
	res  resolver
	lim  fileLimits
	body io.ReadCloser
	in   *cappedReader // counts the decompressed bytes read
	r    *bufio.Reader
	line int
	eof  bool
}

// errFileTooLarge ends a data file past its size limit.
var errFileTooLarge = errors.New("data file too large")

// cappedReader fails once more than left bytes were read; read counts
// them.
type cappedReader struct {
	r    io.Reader
	left int64
	read int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errFileTooLarge
	}
	n, err := c.r.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	c.read += int64(n)
	return n, err
}

func openFileSource(ctx context.Context, client *http.Client, res resolver, url, cursor string, lim fileLimits) (*fileSource, error) {
	skip := 0
	if cursor != "" {
		var err error
		if skip, err = strconv.Atoi(cursor); err != nil {
			return nil, fmt.Errorf("bad data file cursor %q", cursor)
		}
	}
	if lim.now == nil {
		lim.now = time.Now
	}
	if err := lim.checkDeadline(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &fetchError{msg: "failed to download data file: " + err.Error(), permanent: true}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &fetchError{msg: "failed to download data file: " + err.Error(), permanent: isRefusal(err)}
	}
	if resp.StatusCode/100 != 2 {
		resp.Body.Close()
		return nil, &fetchError{msg: fmt.Sprintf("failed to download data file, server responded with code %s", resp.Status),
			permanent: resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests}
	}
	// The transport decompresses Content-Encoding: gzip itself; a gzip
	// file served as is is recognized by its magic number.
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var body io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			resp.Body.Close()
			return nil, &fetchError{msg: "data file: bad gzip: " + err.Error(), permanent: true}
		}
		body = zr
	}
	// The cap counts decompressed bytes: what is parsed.
	in := &cappedReader{r: body, left: lim.maxBytes}
	s := &fileSource{res: res, lim: lim, body: resp.Body, in: in, r: bufio.NewReaderSize(in, 64<<10)}
	// Skipping keeps nothing, so it costs a scan of the bytes, not a
	// parse; the request's context still bounds it.
	for s.line < skip {
		if _, _, err := s.readLine(false); err != nil {
			if errors.Is(err, io.EOF) {
				s.eof = true
				break
			}
			s.close()
			return nil, s.readError(err)
		}
	}
	return s, nil
}

// checkDeadline fails a data file that has taken longer than its time
// budget.
func (l *fileLimits) checkDeadline() error {
	if !l.deadline.IsZero() && l.now().After(l.deadline) {
		return &fetchError{msg: "data file was not read to its end within the time limit", permanent: true}
	}
	return nil
}

// readError classifies an error reading the file.
func (s *fileSource) readError(err error) error {
	if fe := (*fetchError)(nil); errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, errFileTooLarge) {
		return &fetchError{msg: fmt.Sprintf("data file is larger than the limit of %d bytes", s.lim.maxBytes), permanent: true}
	}
	return &fetchError{msg: "failed to read data file: " + err.Error()}
}

// readLine reads the next line, at most maxLine bytes of it (nothing when
// keep is false); tooLong reports a longer line (its rest is skipped). A
// line past maxLines is an error: the file has more lines than allowed.
func (s *fileSource) readLine(keep bool) (line []byte, tooLong bool, err error) {
	if s.line >= s.lim.maxLines {
		if _, err := s.r.Peek(1); err != nil {
			return nil, false, err // io.EOF: the file ends at the limit
		}
		return nil, false, &fetchError{msg: fmt.Sprintf("data file has more than %d lines, the limit", s.lim.maxLines), permanent: true}
	}
	var buf []byte
	for {
		chunk, isPrefix, err := s.r.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) && (len(buf) > 0 || tooLong) {
				s.line++
				return buf, tooLong, nil
			}
			return nil, false, err
		}
		if keep && !tooLong {
			if len(buf)+len(chunk) > s.lim.maxLine {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if !isPrefix {
			s.line++
			return buf, tooLong, nil
		}
	}
}

// next reads one step of the file: until batch recipients, stepLines
// lines or stepBytes bytes. Blank lines are passed over; a bad line is an
// error line with its number.
func (s *fileSource) next(ctx context.Context) (batch, error) {
	if err := s.lim.checkDeadline(); err != nil {
		return batch{}, err
	}
	var refs []ref
	var errs []string
	firstLine, firstByte := s.line, s.in.read
	for len(refs) < s.lim.batch && s.line-firstLine < s.lim.stepLines && s.in.read-firstByte < s.lim.stepBytes && !s.eof {
		line, tooLong, err := s.readLine(true)
		if errors.Is(err, io.EOF) {
			s.eof = true
			break
		}
		if err != nil {
			return batch{}, s.readError(err)
		}
		label := "line " + strconv.Itoa(s.line)
		switch {
		case tooLong:
			errs = append(errs, fmt.Sprintf("%s: longer than %d bytes", label, s.lim.maxLine))
		case len(bytes.TrimSpace(line)) == 0:
		default:
			u, msg := parseUserData(line)
			if msg != "" {
				errs = append(errs, label+": "+msg)
				continue
			}
			refs = append(refs, ref{u, label})
		}
	}
	items, rerrs, missing, err := s.res.resolve(ctx, refs)
	if err != nil {
		return batch{}, err
	}
	return batch{items: items, errs: append(errs, rerrs...), missing: missing, cursor: strconv.Itoa(s.line), done: s.eof}, nil
}

func (s *fileSource) close() { s.body.Close() }
