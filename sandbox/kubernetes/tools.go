//go:build tools

// Package tools pins k8s.io/kubernetes so that `go mod tidy` keeps every module
// that `go build` of kube-apiserver, and of a real node's kubelet, kube-controller-manager
// and kube-scheduler (sandbox/node.ts), needs.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
)
