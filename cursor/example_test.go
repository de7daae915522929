package cursor_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/wxkf/wxkf/cursor"
)

func ExampleOpenDir() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "wxkf-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	d, err := cursor.OpenDir(dir)
	if err != nil {
		log.Fatal(err) // cursor.ErrDirLocked if another process uses dir; cursor.ErrCorrupt if a file is damaged
	}
	defer d.Close()

	cur, err := d.Load(ctx, "wkAbC")
	fmt.Printf("%q %v\n", cur, err)
	if err := d.Save(ctx, "wkAbC", "4gw7MepFLfgF2VC5npN"); err != nil {
		log.Fatal(err)
	}
	data, _ := os.ReadFile(dir + "/" + cursor.CursorFileName)
	fmt.Println(string(data))
	// Output:
	// "" <nil>
	// {"wkAbC": "4gw7MepFLfgF2VC5npN"}
}

func ExampleDedup() {
	ctx := context.Background()
	m := cursor.NewMemory()
	defer m.Close()

	_ = m.MarkDone(ctx, "wkAbC", "msg1", "msg2")
	done, _ := m.Done(ctx, "wkAbC", "msg1", "msg3", "msg2")
	fmt.Println(done)
	// Output: [true false true]
}

func ExampleLocker() {
	ctx := context.Background()
	m := cursor.NewMemory()
	defer m.Close()

	lease, err := m.Lock(ctx, "wkAbC", 30*time.Second) // blocks until no one else holds it
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release(ctx)

	// ... pull and dispatch, then save through the lease: if another process took the account over
	// meanwhile, nothing is written and the error wraps cursor.ErrLeaseLost.
	fmt.Println(lease.Save(ctx, "next-cursor"))
	cur, _ := m.Load(ctx, "wkAbC")
	fmt.Println(cur)
	// Output:
	// <nil>
	// next-cursor
}

// A handler's reply is recorded before it is sent, so that a rerun finishes it instead of answering anew; the
// done mark deletes the record.
func ExampleState() {
	ctx := context.Background()
	m := cursor.NewMemory()
	defer m.Close()
	var s cursor.State = m
	lease, err := s.Lock(ctx, "wkAbC", 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release(ctx)

	_ = lease.PutReply(ctx, "msg1", []byte(`{"parts":["Hello","How can I help?"]}`))
	st, _ := s.Lookup(ctx, "wkAbC", "msg1", "msg2")
	fmt.Printf("msg1 done=%v reply=%s; msg2 %+v\n", st[0].Done, st[0].Reply, st[1])

	_ = lease.MarkDone(ctx, "msg1")
	st, _ = s.Lookup(ctx, "wkAbC", "msg1")
	fmt.Printf("msg1 %+v\n", st[0])
	// Output:
	// msg1 done=false reply={"parts":["Hello","How can I help?"]}; msg2 {Done:false Reply:[]}
	// msg1 {Done:true Reply:[]}
}
