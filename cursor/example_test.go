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

	// ... pull and dispatch; before saving a cursor, make sure the lease is still ours:
	if lease.Err() != nil {
		return // lost: another process may be pulling this account now
	}
	fmt.Println(m.Save(ctx, "wkAbC", "next-cursor"))
	// Output: <nil>
}
