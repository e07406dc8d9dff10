package shard_test

import (
	"fmt"
	"slices"

	"github.com/roost-rt/roost/shard"
)

func Example() {
	r := shard.New[string]()
	phone, _ := r.Add("alice", "10.0.0.1:5000", "phone")
	laptop, _ := r.Add("alice", "10.0.0.2:5000", "laptop")
	bob, _ := r.Add("bob", "10.0.0.3:5000", "bob's tab")

	for _, c := range []*shard.Conn[string]{phone, laptop, bob} {
		if _, err := r.Subscribe(c, "news"); err != nil {
			panic(err)
		}
	}

	// Fan-out: load the snapshot (no lock) and walk its chunks.
	var got []string
	snap := r.Members("news")
	for i := 0; i < snap.NumChunks(); i++ {
		for _, c := range snap.Chunk(i) {
			got = append(got, c.Value)
		}
	}
	slices.Sort(got)
	fmt.Println(got)

	r.Remove(phone, func(channel string, emptied, userLeft bool) {
		fmt.Println("phone left", channel, "emptied:", emptied, "alice left:", userLeft)
	})
	fmt.Println("alice online:", r.IsOnline("alice"), "members:", r.Members("news").Len())
	fmt.Printf("%+v\n", r.Counts())
	// Output:
	// [bob's tab laptop phone]
	// phone left news emptied: false alice left: false
	// alice online: true members: 2
	// {Conns:2 Users:2 Channels:1 Subscriptions:2}
}
