// Package controllers declares the one name Cilium uses from sigs.k8s.io/mcs-api/controllers.
package controllers

// DerivedServiceAnnotation names, on a ServiceImport, the Service derived from it (KEP-1645).
const DerivedServiceAnnotation = "multicluster.kubernetes.io/derived-service"
