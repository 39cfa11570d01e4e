package lazyfs

import "testing"

func TestMemCacheBudget(t *testing.T) {
	c := newMemCache(10)
	k := func(i int64) memKey { return memKey{src: "s", off: i} }
	c.add(k(1), make([]byte, 4))
	c.add(k(2), make([]byte, 4))
	if _, ok := c.get(k(1)); !ok { // 1 is now the most recent
		t.Fatal("entry 1 missing")
	}
	c.add(k(3), make([]byte, 4)) // over budget: 2, the least recent, goes
	if _, ok := c.get(k(2)); ok {
		t.Error("entry 2 kept past the budget")
	}
	for _, i := range []int64{1, 3} {
		if _, ok := c.get(k(i)); !ok {
			t.Errorf("entry %d evicted, want kept", i)
		}
	}
	c.add(k(4), make([]byte, 11))
	if _, ok := c.get(k(4)); ok {
		t.Error("an entry larger than the budget was kept")
	}
	if c.size != 8 {
		t.Errorf("size %d, want 8", c.size)
	}
}
