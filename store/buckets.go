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
	bucketDomains   = []byte("domains")
)

// bucket returns a child of the v1 root.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket { return schema.Bucket(tx, name) }
