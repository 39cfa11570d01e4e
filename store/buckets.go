package store

import (
	bolt "go.etcd.io/bbolt"
)

var (
	bucketRoot      = []byte("v1")
	bucketMeta      = []byte("meta")
	bucketFunctions = []byte("functions")
	bucketProvision = []byte("provision")
	bucketTriggers  = []byte("triggers")
	keyVersion      = []byte("version")
)

// bucket returns a child of the v1 root. Migrations create every child, so
// a missing one is a programming error and panics inside the transaction.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(bucketRoot).Bucket(name)
	if b == nil {
		panic("store: bucket v1/" + string(name) + " missing; migrations did not run")
	}
	return b
}
