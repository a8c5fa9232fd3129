// sdk-app: the application side of dtm's Kratos example, written with dtm's
// own Go SDK (github.com/dtm-labs/client/dtmgrpc) and pointed at dtx-server.
// It runs what the seed's app runs, plus the cases the compatibility issue
// asks for, and exits non-zero with a message when an answer is not dtm's.
//
//	sdk-app -dtm <address> -busi <server>/api.trans.v1.Trans [-etcd host:port]
//	        [-failures=false]
//
// <address> is host:port, etcd://<etcd>/dtmservice (dtm's Kratos driver) or
// discovery://<etcd>/dtmservice (Kratos's discovery resolver, registered here
// as a Kratos app registers it). Prints "OK <case> gid=<gid>" per case and
// "CHECKBACK gid=<gid>" for the message left for the server to check back.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dtm-labs/client/dtmcli"
	"github.com/dtm-labs/client/dtmgrpc"
	_ "github.com/dtm-labs/driver-kratos"
	etcdregistry "github.com/go-kratos/kratos/contrib/registry/etcd/v2"
	"github.com/go-kratos/kratos/v2/transport/grpc/resolver/discovery"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	pb "dtx.test/compat/api/trans/v1"
)

var (
	dtm      = flag.String("dtm", "localhost:36790", "dtm server address")
	busi     = flag.String("busi", "", "branch service, e.g. discovery://127.0.0.1:2379/trans/api.trans.v1.Trans")
	etcd     = flag.String("etcd", "", "etcd for discovery:// (Kratos's resolver)")
	failures = flag.Bool("failures", true, "also run the cases where the service refuses Amount 4000 (trans-go does; dtx's C++ example does not)")

	req     = &pb.AdjustInfo{Amount: 30, UserID: 1}
	refused = &pb.AdjustInfo{Amount: 4000, UserID: 1}
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func url(method string) string { return *busi + "/" + method }

// tcc runs the seed's TCC: TransOut then TransIn, each with its confirm and
// cancel; `in` is TransIn's request.
func tcc(in *pb.AdjustInfo) (string, error) {
	gid := dtmgrpc.MustGenGid(*dtm)
	reply := &pb.Response{}
	return gid, dtmgrpc.TccGlobalTransaction(*dtm, gid, func(t *dtmgrpc.TccGrpc) error {
		if err := t.CallBranch(req, url("TransOut"), url("TransOutConfirm"), url("TransOutCancel"), reply); err != nil {
			return err
		}
		return t.CallBranch(in, url("TransIn"), url("TransInConfirm"), url("TransInCancel"), reply)
	})
}

func saga(in *pb.AdjustInfo, concurrent bool) (*dtmgrpc.SagaGrpc, error) {
	s := dtmgrpc.NewSagaGrpc(*dtm, dtmgrpc.MustGenGid(*dtm)).
		Add(url("TransOut"), url("TransOutRevert"), req).
		Add(url("TransIn"), url("TransInRevert"), in)
	if concurrent {
		// Orders travel in CustomedData, as dtm's gRPC SDK sends them.
		s.EnableConcurrent().AddBranchOrder(1, []int{0})
	}
	s.WaitResult = true
	return s, s.Submit()
}

func main() {
	flag.Parse()
	if *busi == "" {
		fail("-busi is required")
	}
	if *etcd != "" {
		client, err := clientv3.New(clientv3.Config{
			Endpoints:   strings.Split(*etcd, ","),
			DialTimeout: 5 * time.Second,
		})
		if err != nil {
			fail("etcd: %v", err)
		}
		resolver.Register(discovery.NewBuilder(etcdregistry.New(client), discovery.WithInsecure(true)))
	}

	gid, err := tcc(req)
	if err != nil {
		fail("tcc gid=%s: %v", gid, err)
	}
	fmt.Printf("OK tcc gid=%s\n", gid)

	if *failures {
		// The second try is refused: the SDK aborts, the server cancels.
		gid, err = tcc(refused)
		if status.Code(err) != codes.Aborted {
			fail("tcc-abort gid=%s: want Aborted from the refused try, got %v", gid, err)
		}
		fmt.Printf("OK tcc-abort gid=%s\n", gid)
	}

	s, err := saga(req, false)
	if err != nil {
		fail("saga gid=%s: %v", s.Gid, err)
	}
	fmt.Printf("OK saga gid=%s\n", s.Gid)

	if *failures {
		// The second action fails: WaitResult reports dtm's FAILURE.
		s, err = saga(refused, false)
		if status.Code(err) != codes.Aborted || !errors.Is(dtmgrpc.GrpcError2DtmError(err), dtmcli.ErrFailure) {
			fail("saga-rollback gid=%s: want Aborted (FAILURE), got %v", s.Gid, err)
		}
		fmt.Printf("OK saga-rollback gid=%s\n", s.Gid)
	}

	s, err = saga(req, true)
	if err != nil {
		fail("saga-concurrent gid=%s: %v", s.Gid, err)
	}
	fmt.Printf("OK saga-concurrent gid=%s\n", s.Gid)

	// Submitting a finished saga again (a retry after a lost answer) is OK
	// with dtx (dtm: FAILURE, docs/semantics.md); other steps under its gid
	// are a conflict, AlreadyExists, not FAILURE.
	again := dtmgrpc.NewSagaGrpc(*dtm, s.Gid).
		Add(url("TransOut"), url("TransOutRevert"), req).
		Add(url("TransIn"), url("TransInRevert"), req)
	again.EnableConcurrent().AddBranchOrder(1, []int{0})
	if err := again.Submit(); err != nil {
		fail("resubmit gid=%s: want OK (a retry), got %v", s.Gid, err)
	}
	other := dtmgrpc.NewSagaGrpc(*dtm, s.Gid).Add(url("TransOut"), url("TransOutRevert"), req)
	if err := other.Submit(); status.Code(err) != codes.AlreadyExists {
		fail("resubmit-other gid=%s: want AlreadyExists, got %v", s.Gid, err)
	}
	fmt.Printf("OK resubmit gid=%s\n", s.Gid)

	// MSG: Prepare, then Submit.
	gid = dtmgrpc.MustGenGid(*dtm)
	msg := dtmgrpc.NewMsgGrpc(*dtm, gid).Add(url("TransIn"), req)
	if err := msg.Prepare(url("QueryPrepared")); err != nil {
		fail("msg prepare gid=%s: %v", gid, err)
	}
	if err := msg.Submit(); err != nil {
		fail("msg submit gid=%s: %v", gid, err)
	}
	fmt.Printf("OK msg gid=%s\n", gid)

	// MSG left prepared: the server checks back through QueryPrepared.
	gid = dtmgrpc.MustGenGid(*dtm)
	msg = dtmgrpc.NewMsgGrpc(*dtm, gid).Add(url("TransIn"), req)
	if err := msg.Prepare(url("QueryPrepared")); err != nil {
		fail("msg-checkback prepare gid=%s: %v", gid, err)
	}
	fmt.Printf("CHECKBACK gid=%s\n", gid)
}
