//go:build tools

// Package tools pins k8s.io/kubernetes so that `go mod tidy` keeps every module
// that `go build k8s.io/kubernetes/cmd/kube-apiserver` needs.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"
