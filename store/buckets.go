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

	// Since version 3 (versions.go).
	bucketVersions     = []byte("versions")
	bucketAliases      = []byte("aliases")
	bucketConcurrency  = []byte("concurrency")
	bucketRestrictions = []byte("restrictions")
	bucketProvisionQ   = []byte("provision-qualified")

	// Since version 4 (domains.go).
	bucketDomains = []byte("domains")
)

// bucket returns a child of the v1 root.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket { return schema.Bucket(tx, name) }
