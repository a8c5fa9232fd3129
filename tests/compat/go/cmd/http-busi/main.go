// http-busi: an HTTP branch service written to dtm's HTTP conventions (plain
// net/http handlers, as dtm's own examples write them with gin), so that dtx's
// HTTP branch calls are checked by code that only knows dtm. Every handler
// reads the branch identity from the query string with dtm's own SDK
// (dtmcli.BarrierFromQuery, which needs no database) and answers as dtm
// expects: 200 {"dtm_result":"SUCCESS"}, 409 FAILURE, 425 ONGOING
// (dtmcli.Result2HttpJSON picks the code). It keeps no balances: it records
// every call in memory, for the driver (cmd/http-app) to read back.
//
//	http-busi [-listen 127.0.0.1:0]
//
// Prints "listening on 127.0.0.1:<port>", then one line per call.
//
//	POST|GET /api/busi/<handler>   TransOut, TransOutCompensate, TransIn, ...
//	         (any name: the handler name is only recorded and matched)
//	GET  /api/ctl/calls?gid=G      the calls recorded for G, in arrival order
//	POST /api/ctl/prepared?gid=G&result=R
//	                               what QueryPrepared answers for G: SUCCESS
//	                               (the default), FAILURE or ONGOING
//
// A branch's JSON body may say how to answer: {"fail":"TransIn"} makes the
// handler TransIn answer 409 FAILURE, {"ongoing":"TransIn"} makes it answer
// 425 ONGOING the first time it is called for that gid. Compensations,
// confirms and cancels answer SUCCESS unless named. A query without gid,
// trans_type, branch_id or op (what BarrierFromQuery refuses) is recorded
// with status 400 and answered 400.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/dtm-labs/client/dtmcli"
)

// Call is one request as the service saw it; cmd/http-app decodes the same
// JSON.
type Call struct {
	Handler     string            `json:"handler"`
	Method      string            `json:"method"`
	Query       map[string]string `json:"query"`
	Body        string            `json:"body"`
	ContentType string            `json:"content_type"`
	Headers     map[string]string `json:"headers"` // the X-Compat-* ones
	Status      int               `json:"status"`
}

type busiRequest struct {
	Fail    string `json:"fail"`
	Ongoing string `json:"ongoing"`
}

type service struct {
	mu       sync.Mutex
	calls    map[string][]Call // by gid
	prepared map[string]string // gid -> QueryPrepared's answer
	ongoing  map[string]bool   // gid/handler/op answered ONGOING once
}

func (s *service) record(gid string, c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[gid] = append(s.calls[gid], c)
}

// answer decides what a branch handler returns: nil, or an error wrapping
// dtmcli.ErrFailure or dtmcli.ErrOngoing.
func (s *service) answer(handler string, b *dtmcli.BranchBarrier, body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if handler == "QueryPrepared" {
		switch s.prepared[b.Gid] {
		case dtmcli.ResultFailure:
			return fmt.Errorf("the local transaction of %s rolled back: %w", b.Gid, dtmcli.ErrFailure)
		case dtmcli.ResultOngoing:
			return dtmcli.ErrOngoing
		}
		return nil
	}
	var req busiRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return fmt.Errorf("body is not JSON: %v", err)
		}
	}
	if req.Fail == handler {
		return fmt.Errorf("%s refuses %s: %w", handler, b.Gid, dtmcli.ErrFailure)
	}
	key := b.Gid + "/" + handler + "/" + b.Op
	if req.Ongoing == handler && !s.ongoing[key] {
		s.ongoing[key] = true
		return dtmcli.ErrOngoing
	}
	return nil
}

func (s *service) busi(w http.ResponseWriter, r *http.Request) {
	handler := strings.TrimPrefix(r.URL.Path, "/api/busi/")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	qs := r.URL.Query()
	c := Call{
		Handler:     handler,
		Method:      r.Method,
		Query:       map[string]string{},
		Body:        string(body),
		ContentType: r.Header.Get("Content-Type"),
		Headers:     map[string]string{},
	}
	for k := range qs {
		c.Query[k] = qs.Get(k)
	}
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Compat-") {
			c.Headers[k] = r.Header.Get(k)
		}
	}
	b, err := dtmcli.BarrierFromQuery(qs)
	if err != nil {
		c.Status = http.StatusBadRequest
		s.record(qs.Get("gid"), c)
		log.Printf("BAD-QUERY %s %s?%s: %v", r.Method, r.URL.Path, r.URL.RawQuery, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var result interface{} = dtmcli.MapSuccess
	if err := s.answer(handler, b, body); err != nil {
		result = err
	}
	code, res := dtmcli.Result2HttpJSON(result)
	if code != http.StatusOK {
		// dtm's own handlers (dtmutil.WrapHandler) also name the result.
		m := res.(map[string]string)
		switch {
		case errors.Is(result.(error), dtmcli.ErrFailure):
			m["dtm_result"] = dtmcli.ResultFailure
		case errors.Is(result.(error), dtmcli.ErrOngoing):
			m["dtm_result"] = dtmcli.ResultOngoing
		}
	}
	c.Status = code
	s.record(b.Gid, c)
	log.Printf("%s %s gid=%s trans_type=%s branch_id=%s op=%s -> %d", r.Method, handler, b.Gid,
		b.TransType, b.BranchID, b.Op, code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(res)
}

func (s *service) ctlCalls(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	calls := append([]Call{}, s.calls[r.URL.Query().Get("gid")]...)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(calls)
}

func (s *service) ctlPrepared(w http.ResponseWriter, r *http.Request) {
	gid, result := r.URL.Query().Get("gid"), r.URL.Query().Get("result")
	if r.Method != http.MethodPost || gid == "" ||
		(result != dtmcli.ResultSuccess && result != dtmcli.ResultFailure && result != dtmcli.ResultOngoing) {
		http.Error(w, "POST /api/ctl/prepared?gid=G&result=SUCCESS|FAILURE|ONGOING", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.prepared[gid] = result
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(dtmcli.MapSuccess)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	log.SetOutput(os.Stdout)
	log.SetFlags(log.Ltime | log.Lmicroseconds)

	s := &service{calls: map[string][]Call{}, prepared: map[string]string{}, ongoing: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/busi/", s.busi)
	mux.HandleFunc("/api/ctl/calls", s.ctlCalls)
	mux.HandleFunc("/api/ctl/prepared", s.ctlPrepared)

	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	fmt.Printf("listening on %s\n", lis.Addr().String())
	log.Fatal(http.Serve(lis, mux))
}
