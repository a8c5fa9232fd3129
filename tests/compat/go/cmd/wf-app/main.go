// wf-app: dtm's Go workflow SDK (github.com/dtm-labs/client/workflow) against
// dtx-server over gRPC, with its steps in trans-go. It serves dtm's resume
// callback (/workflow.Workflow/Execute) on a gRPC server of its own, as a
// Go application does, and runs:
//
//	wf-ok        TransOut then TransIn; run again, the recorded result comes
//	             back and no step is called
//	wf-rollback  TransIn refused (FAILURE): TransOut's rollback runs
//	wf-resume    the workflow answers ONGOING after its first step; dtx-server
//	             calls the callback when it is due and the workflow finishes
//	             there, its first step replayed (not called again)
//
//	wf-app -dtm <host:port> -busi <trans-go host:port>
//
// Prints "OK <case> gid=<gid>" per case; exits non-zero with a message when
// an answer is not dtm's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/dtm-labs/client/dtmcli"
	"github.com/dtm-labs/client/workflow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	pb "dtx.test/compat/api/trans/v1"
)

var (
	dtm  = flag.String("dtm", "", "dtx-server's gRPC address")
	busi = flag.String("busi", "", "trans-go's address (host:port)")

	mu    sync.Mutex
	calls = map[string]int{} // "<gid> <method>" -> calls that reached the wire
	runs  = map[string]int{} // gid -> runs of the workflow function
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

// count sees the calls that go out (workflow.Interceptor replays recorded
// steps without calling).
func count(ctx context.Context, method string, req, reply interface{},
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	// dtm's metadata, as workflow.Interceptor set it for the call.
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get("dtm-gid")) > 0 {
		mu.Lock()
		calls[md.Get("dtm-gid")[0]+" "+method]++
		mu.Unlock()
	}
	return err
}

func called(gid, method string) int {
	mu.Lock()
	defer mu.Unlock()
	return calls[gid+" /api.trans.v1.Trans/"+method]
}

func main() {
	flag.Parse()
	if *dtm == "" || *busi == "" {
		fail("usage: wf-app -dtm host:port -busi host:port")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	server := grpc.NewServer()
	workflow.InitGrpc(*dtm, lis.Addr().String(), server)
	go func() { _ = server.Serve(lis) }()
	defer server.Stop()

	conn, err := grpc.Dial(*busi, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(workflow.Interceptor, count))
	if err != nil {
		fail("dial trans-go: %v", err)
	}
	cli := pb.NewTransClient(conn)

	resumed := make(chan string, 1)
	transfer := func(wf *workflow.Workflow, data []byte) ([]byte, error) {
		mu.Lock()
		runs[wf.Gid]++
		run := runs[wf.Gid]
		mu.Unlock()
		var in pb.AdjustInfo
		if err := proto.Unmarshal(data, &in); err != nil {
			return nil, err
		}
		// Out of user 1: 30; into user 2: the input's amount (trans-go refuses
		// 4000 with FAILURE, which rolls the transfer out back).
		out := &pb.AdjustInfo{Amount: 30, UserID: 1}
		wf.NewBranch().OnRollback(func(bb *dtmcli.BranchBarrier) error {
			_, err := cli.TransOutRevert(wf.Context, out)
			return err
		})
		if _, err := cli.TransOut(wf.Context, out); err != nil {
			return nil, err
		}
		if wf.Gid == "wf-resume" && run == 1 {
			return nil, dtmcli.ErrOngoing // resumed by dtx-server later
		}
		wf.NewBranch().OnRollback(func(bb *dtmcli.BranchBarrier) error {
			_, err := cli.TransInRevert(wf.Context, &in)
			return err
		})
		if _, err := cli.TransIn(wf.Context, &in); err != nil {
			return nil, err
		}
		if wf.Gid == "wf-resume" {
			resumed <- wf.Gid
		}
		return []byte(fmt.Sprintf("moved %d", in.Amount)), nil
	}
	if err := workflow.Register2("transfer", transfer, func(wf *workflow.Workflow) {
		wf.RetryInterval = 1 // resumed 1 s after it was started
	}); err != nil {
		fail("register: %v", err)
	}
	input := func(amount int64) []byte {
		b, _ := proto.Marshal(&pb.AdjustInfo{Amount: amount, UserID: 2})
		return b
	}

	// wf-ok
	res, err := workflow.Execute2("transfer", "wf-ok", input(30))
	if err != nil || string(res) != "moved 30" {
		fail("wf-ok: %q, %v", res, err)
	}
	res, err = workflow.Execute2("transfer", "wf-ok", input(30))
	if err != nil || string(res) != "moved 30" || runs["wf-ok"] != 1 {
		fail("wf-ok again: %q, %v, %d runs", res, err, runs["wf-ok"])
	}
	if called("wf-ok", "TransOut") != 1 || called("wf-ok", "TransIn") != 1 {
		fail("wf-ok: TransOut %d, TransIn %d calls", called("wf-ok", "TransOut"), called("wf-ok", "TransIn"))
	}
	fmt.Println("OK wf-ok gid=wf-ok")

	// wf-rollback: trans-go refuses 4000 (codes.Aborted, FAILURE)
	_, err = workflow.Execute2("transfer", "wf-rollback", input(4000))
	if !errors.Is(err, dtmcli.ErrFailure) {
		fail("wf-rollback: want FAILURE, got %v", err)
	}
	if called("wf-rollback", "TransOutRevert") != 1 || called("wf-rollback", "TransInRevert") != 0 {
		fail("wf-rollback: TransOutRevert %d, TransInRevert %d calls",
			called("wf-rollback", "TransOutRevert"), called("wf-rollback", "TransInRevert"))
	}
	_, err = workflow.Execute2("transfer", "wf-rollback", input(4000))
	if !errors.Is(err, dtmcli.ErrFailure) {
		fail("wf-rollback again: want FAILURE, got %v", err)
	}
	fmt.Println("OK wf-rollback gid=wf-rollback")

	// wf-resume
	_, err = workflow.Execute2("transfer", "wf-resume", input(30))
	if !errors.Is(err, dtmcli.ErrOngoing) {
		fail("wf-resume: want ONGOING, got %v", err)
	}
	select {
	case <-resumed:
	case <-time.After(30 * time.Second):
		fail("wf-resume: dtx-server did not call the workflow back within 30 s")
	}
	// The resumed run submits right after the function returns.
	for i := 0; ; i++ {
		res, err = workflow.Execute2("transfer", "wf-resume", input(30))
		if err == nil || i == 100 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || string(res) != "moved 30" {
		fail("wf-resume after the callback: %q, %v", res, err)
	}
	// At least the first run and the resume; the Execute calls above may
	// run it once more while the resume is submitting (dtm's Go SDK does
	// not keep two runs of a gid apart), replaying every step.
	mu.Lock()
	resumeRuns := runs["wf-resume"]
	mu.Unlock()
	if resumeRuns < 2 || called("wf-resume", "TransOut") != 1 ||
		called("wf-resume", "TransIn") != 1 {
		fail("wf-resume: %d runs, TransOut %d, TransIn %d calls", resumeRuns,
			called("wf-resume", "TransOut"), called("wf-resume", "TransIn"))
	}
	fmt.Println("OK wf-resume gid=wf-resume")
}
