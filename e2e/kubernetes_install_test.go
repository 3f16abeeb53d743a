package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/slipwaytest/kubetest"
)

// The objects of deploy/kubernetes the install test looks for.
const (
	installDir     = "../deploy/kubernetes"
	systemNS       = "slipway-system"
	serviceAccount = "slipway"
	managedNS      = "default" // the example namespace rbac.yaml binds
	fieldManager   = "slipway"
)

var (
	crdGVR   = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	routeGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	appGVR   = schema.GroupVersionResource{Group: "slipway.dev", Version: "v1alpha1", Resource: "apps"}
)

// TestKubernetes_InstallManifests installs slipway as docs/kubernetes.md says (the
// namespace, the token's Secret, then kubectl apply -k deploy/kubernetes) on a real API server, and checks what
// the manifests promise: the CRDs are accepted and Established (so they are structural),
// the RBAC objects exist, the Deployment's pod passes the namespace's restricted Pod
// Security admission and comes back on the same volume when it is deleted, and, as the
// slipway ServiceAccount with a token the API server issues, every verb rbac.yaml grants is
// allowed, slipway's writes go through, and what it does not grant is refused.
func TestKubernetes_InstallManifests(t *testing.T) {
	k := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kubectl := kubectlFor(t, k)
	kubectl("apply", "-f", filepath.Join(installDir, "namespace.yaml"))
	kubectl("-n", systemNS, "create", "secret", "generic", "slipway-admin-token", "--from-literal=token=slw_"+strings.Repeat("0f", 32))
	kubectl("apply", "-k", installDir)
	dyn, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("CRDs are established", func(t *testing.T) {
		for _, name := range crdNames(t) {
			var conds []any
			defer func() {
				if t.Failed() {
					t.Logf("CRD %s: conditions %v", name, conds)
				}
			}()
			slipwaytest.Eventually(t, time.Minute, "CRD "+name+" Established", func() bool {
				crd, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("CRD %s: %v", name, err)
				}
				conds, _, _ = unstructured.NestedSlice(crd.Object, "status", "conditions")
				for _, c := range conds {
					c, _ := c.(map[string]any)
					if c["type"] == "NonStructuralSchema" && c["status"] == "True" {
						t.Fatalf("CRD %s is not structural: %v", name, c["message"])
					}
					if c["type"] == "Established" && c["status"] == "True" {
						return true
					}
				}
				return false
			})
		}
	})

	t.Run("RBAC objects exist", func(t *testing.T) {
		if _, err := k.Client.CoreV1().ServiceAccounts(systemNS).Get(ctx, serviceAccount, metav1.GetOptions{}); err != nil {
			t.Error(err)
		}
		for _, role := range clusterRoles(t) {
			live, err := k.Client.RbacV1().ClusterRoles().Get(ctx, role.Name, metav1.GetOptions{})
			if err != nil {
				t.Error(err)
				continue
			}
			if len(live.Rules) != len(role.Rules) {
				t.Errorf("ClusterRole %s has %d rules in the cluster, %d in rbac.yaml", role.Name, len(live.Rules), len(role.Rules))
			}
			rb, err := k.Client.RbacV1().RoleBindings(managedNS).Get(ctx, role.Name, metav1.GetOptions{})
			if err != nil {
				t.Error(err)
				continue
			}
			if rb.RoleRef.Name != role.Name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != serviceAccount || rb.Subjects[0].Namespace != systemNS {
				t.Errorf("RoleBinding %s/%s: roleRef %v, subjects %v", managedNS, rb.Name, rb.RoleRef, rb.Subjects)
			}
		}
	})

	t.Run("the pod runs and a new one takes the same volume", func(t *testing.T) {
		// The test cluster has no storage provisioner: a volume for the claim, as one would
		// provide it.
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "slipway-data-test"},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/slipway-test"}},
				ClaimRef:               &corev1.ObjectReference{Namespace: systemNS, Name: "slipway-data"},
			},
		}
		if _, err := k.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		first := readyPod(t, ctx, k.Client, "")
		if err := k.Client.CoreV1().Pods(systemNS).Delete(ctx, first.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		second := readyPod(t, ctx, k.Client, first.Name)
		for _, p := range []*corev1.Pod{first, second} {
			if claim := podClaim(p); claim != "slipway-data" {
				t.Errorf("pod %s mounts claim %q, want slipway-data", p.Name, claim)
			}
		}
		dep, err := k.Client.AppsV1().Deployments(systemNS).Get(ctx, "slipway", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *dep.Spec.Replicas != 1 || dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || dep.Spec.Template.Spec.ServiceAccountName != serviceAccount {
			t.Errorf("Deployment: replicas %d, strategy %s, service account %q; want 1, Recreate, slipway",
				*dep.Spec.Replicas, dep.Spec.Strategy.Type, dep.Spec.Template.Spec.ServiceAccountName)
		}
	})

	sa := serviceAccountConfig(t, ctx, k)
	saClient, err := kubernetes.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	saDyn, err := dynamic.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every verb granted is allowed in the managed namespace", func(t *testing.T) {
		for _, role := range clusterRoles(t) {
			for _, rule := range role.Rules {
				for _, group := range rule.APIGroups {
					for _, res := range rule.Resources {
						for _, verb := range rule.Verbs {
							if !can(t, ctx, saClient, managedNS, group, res, verb) {
								t.Errorf("ClusterRole %s grants %s %s (group %q) but the ServiceAccount may not in %s", role.Name, verb, res, group, managedNS)
							}
						}
					}
				}
			}
		}
	})

	t.Run("slipway's writes go through", func(t *testing.T) {
		slipwayWrites(t, ctx, k, dyn, saDyn, saClient)
	})

	t.Run("what is not granted is refused", func(t *testing.T) {
		for _, c := range []struct{ ns, group, resource, verb string }{
			{managedNS, "", "secrets", "get"},
			{managedNS, "", "secrets", "list"},
			{managedNS, "", "configmaps", "get"},
			{managedNS, "", "pods", "create"},
			{managedNS, "", "pods", "delete"},
			{managedNS, "", "pods/exec", "create"},
			{managedNS, "", "serviceaccounts/token", "create"},
			{managedNS, "apps", "deployments", "create"},
			{managedNS, "apps", "replicasets", "update"},
			{managedNS, "", "services", "update"},
			{managedNS, "gateway.networking.k8s.io", "httproutes", "create"},
			{managedNS, "gateway.networking.k8s.io", "httproutes", "delete"},
			{managedNS, "gateway.networking.k8s.io", "gateways", "patch"},
			{managedNS, "slipway.dev", "apps", "create"},
			{managedNS, "slipway.dev", "apps", "update"},
			{managedNS, "slipway.dev", "apps", "delete"},
			{managedNS, "rbac.authorization.k8s.io", "rolebindings", "create"},
			{"kube-system", "apps", "replicasets", "list"},
			{"kube-system", "", "services", "create"},
			{systemNS, "", "secrets", "get"},
			{systemNS, "", "pods", "list"},
			{"", "", "namespaces", "list"},
			{"", "", "nodes", "list"},
			{"", "rbac.authorization.k8s.io", "clusterroles", "create"},
			{"", "apiextensions.k8s.io", "customresourcedefinitions", "create"},
		} {
			if can(t, ctx, saClient, c.ns, c.group, c.resource, c.verb) {
				t.Errorf("the ServiceAccount may %s %s (group %q) in namespace %q; rbac.yaml does not grant it", c.verb, c.resource, c.group, c.ns)
			}
		}
		rs := replicaSet("refused")
		_, err := saClient.AppsV1().ReplicaSets("kube-system").Apply(ctx, rs, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
		if !apierrors.IsForbidden(err) {
			t.Errorf("a ReplicaSet applied in kube-system: %v, want Forbidden", err)
		}
	})
}

// slipwayWrites does, as the ServiceAccount, what slipway's kubernetes platform does in a
// namespace it manages: watch ReplicaSets, pods and Services; create and change a
// ReplicaSet and a Service by server-side apply and delete them (with the UID as a
// precondition); label a pod as serving and take the label off; set the weights of an
// HTTPRoute; read Apps and write one's status; record an Event.
func slipwayWrites(t *testing.T, ctx context.Context, k *kubetest.Cluster, dyn, saDyn dynamic.Interface, sa kubernetes.Interface) {
	for _, list := range []func() error{
		func() error { _, err := sa.AppsV1().ReplicaSets(managedNS).List(ctx, metav1.ListOptions{}); return err },
		func() error { _, err := sa.CoreV1().Pods(managedNS).List(ctx, metav1.ListOptions{}); return err },
		func() error { _, err := sa.CoreV1().Services(managedNS).List(ctx, metav1.ListOptions{}); return err },
		func() error {
			_, err := saDyn.Resource(routeGVR).Namespace(managedNS).List(ctx, metav1.ListOptions{})
			return err
		},
		func() error {
			_, err := saDyn.Resource(appGVR).Namespace(managedNS).List(ctx, metav1.ListOptions{})
			return err
		},
	} {
		if err := list(); err != nil {
			t.Errorf("list: %v", err)
		}
	}
	w, err := sa.AppsV1().ReplicaSets(managedNS).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch ReplicaSets: %v", err)
	}
	defer w.Stop()

	rs := replicaSet("web-abc123")
	created, err := sa.AppsV1().ReplicaSets(managedNS).Apply(ctx, rs, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		t.Fatalf("create a ReplicaSet by server-side apply: %v", err)
	}
	select {
	case <-w.ResultChan():
	case <-ctx.Done():
		t.Error("the watch of ReplicaSets saw nothing")
	}
	rs.Spec.WithReplicas(2)
	if _, err := sa.AppsV1().ReplicaSets(managedNS).Apply(ctx, rs, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		t.Errorf("scale a ReplicaSet by server-side apply: %v", err)
	}

	svc := corev1ac.Service("web", managedNS).
		WithLabels(map[string]string{"slipway.dev/app": "web", "app.kubernetes.io/managed-by": "slipway"}).
		WithSpec(corev1ac.ServiceSpec().WithSelector(map[string]string{"slipway.dev/app": "web", "slipway.dev/revision": "abc123"}).
			WithPorts(corev1ac.ServicePort().WithName("http").WithPort(80).WithTargetPort(intstr.FromInt32(8080))))
	liveSvc, err := sa.CoreV1().Services(managedNS).Apply(ctx, svc, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		t.Fatalf("create a Service by server-side apply: %v", err)
	}
	svc.Spec.WithSelector(map[string]string{"slipway.dev/revision": "def456"})
	if _, err := sa.CoreV1().Services(managedNS).Apply(ctx, svc, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		t.Errorf("change a Service's selector by server-side apply: %v", err)
	}

	// The cluster's ReplicaSet controller makes the pods; slipway labels them.
	pod := eventuallyPod(t, ctx, k.Client, "slipway.dev/app=web")
	if _, err := sa.CoreV1().Pods(managedNS).Apply(ctx, corev1ac.Pod(pod.Name, managedNS).WithLabels(map[string]string{"slipway.dev/serving": "true"}),
		metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		t.Errorf("label a pod serving by server-side apply: %v", err)
	}
	if _, err := sa.CoreV1().Pods(managedNS).Patch(ctx, pod.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"slipway.dev/serving":null}}}`),
		metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
		t.Errorf("take a pod's serving label off: %v", err)
	}

	// The user's HTTPRoute; slipway sets the weights of its rule.
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "web", "namespace": managedNS},
		"spec": map[string]any{"parentRefs": []any{map[string]any{"name": "gateway"}},
			"rules": []any{map[string]any{"backendRefs": []any{map[string]any{"name": "web-stable", "port": int64(80), "weight": int64(100)}}}}},
	}}
	if _, err := dyn.Resource(routeGVR).Namespace(managedNS).Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the user's HTTPRoute: %v", err)
	}
	weights, _ := json.Marshal(map[string]any{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "web", "namespace": managedNS},
		"spec": map[string]any{"rules": []any{map[string]any{"backendRefs": []any{
			map[string]any{"name": "web-stable", "port": 80, "weight": 80},
			map[string]any{"name": "web-canary", "port": 80, "weight": 20},
		}}}}})
	force := true
	if _, err := saDyn.Resource(routeGVR).Namespace(managedNS).Patch(ctx, "web", types.ApplyPatchType, weights,
		metav1.PatchOptions{FieldManager: fieldManager, Force: &force}); err != nil {
		t.Errorf("set an HTTPRoute's weights by server-side apply: %v", err)
	}

	// An App declared as a custom resource; slipway writes its status.
	app := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "slipway.dev/v1alpha1", "kind": "App",
		"metadata": map[string]any{"name": "web", "namespace": managedNS},
		"spec": map[string]any{"container": map[string]any{"image": "registry.example/web:1", "port": int64(8080)},
			"strategy": map[string]any{"rolling": map[string]any{}}},
	}}
	if _, err := dyn.Resource(appGVR).Namespace(managedNS).Create(ctx, app, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create an App: %v", err)
	}
	status, _ := json.Marshal(map[string]any{"apiVersion": "slipway.dev/v1alpha1", "kind": "App",
		"metadata": map[string]any{"name": "web", "namespace": managedNS},
		"status":   map[string]any{"phase": "Progressing", "step": 1, "steps": 3, "weight": 20}})
	if _, err := saDyn.Resource(appGVR).Namespace(managedNS).Patch(ctx, "web", types.ApplyPatchType, status,
		metav1.PatchOptions{FieldManager: fieldManager, Force: &force}, "status"); err != nil {
		t.Errorf("write an App's status: %v", err)
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "web.", Namespace: managedNS},
		InvolvedObject: corev1.ObjectReference{APIVersion: "slipway.dev/v1alpha1", Kind: "App", Name: "web", Namespace: managedNS},
		Reason:         "StepAdvanced", Message: "canary at 20%", Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "slipway"}, FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
	}
	if _, err := sa.CoreV1().Events(managedNS).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Errorf("record an Event: %v", err)
	}

	uid := liveSvc.UID
	if err := sa.CoreV1().Services(managedNS).Delete(ctx, "web", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil {
		t.Errorf("delete a Service: %v", err)
	}
	propagation := metav1.DeletePropagationBackground
	rsUID := created.UID
	if err := sa.AppsV1().ReplicaSets(managedNS).Delete(ctx, *rs.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &rsUID}, PropagationPolicy: &propagation}); err != nil {
		t.Errorf("delete a ReplicaSet: %v", err)
	}
}

// replicaSet is a ReplicaSet as slipway makes one for a revision of the app web.
func replicaSet(name string) *appsv1ac.ReplicaSetApplyConfiguration {
	labels := map[string]string{"slipway.dev/app": "web", "slipway.dev/revision": strings.TrimPrefix(name, "web-"), "app.kubernetes.io/managed-by": "slipway"}
	return appsv1ac.ReplicaSet(name, managedNS).WithLabels(labels).WithSpec(appsv1ac.ReplicaSetSpec().
		WithReplicas(1).
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
		WithTemplate(corev1ac.PodTemplateSpec().WithLabels(labels).WithSpec(corev1ac.PodSpec().
			WithContainers(corev1ac.Container().WithName("app").WithImage("registry.example/web:1")))))
}

// kubectlFor returns a function that runs the test cluster's kubectl as its administrator
// and fails the test when it fails.
func kubectlFor(t *testing.T, k *kubetest.Cluster) func(args ...string) string {
	t.Helper()
	out, err := exec.Command("../scripts/kube-up.sh", "cached").Output()
	if err != nil {
		t.Fatalf("scripts/kube-up.sh cached: %v", err)
	}
	bin := filepath.Join(strings.TrimSpace(string(out)), "bin", "kubectl")
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--kubeconfig", k.Kubeconfig}, args...)...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
}

// manifests returns the documents of the file name of deploy/kubernetes.
func manifests(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(installDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range strings.Split(string(b), "\n---\n") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// crdNames returns the names of the CRDs of crds.yaml.
func crdNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, d := range manifests(t, "crds.yaml") {
		var obj metav1.PartialObjectMetadata
		if err := yaml.Unmarshal(d, &obj); err != nil {
			t.Fatal(err)
		}
		names = append(names, obj.Name)
	}
	if len(names) == 0 {
		t.Fatal("crds.yaml has no CRD")
	}
	return names
}

// clusterRoles returns the ClusterRoles of rbac.yaml.
func clusterRoles(t *testing.T) []rbacv1.ClusterRole {
	t.Helper()
	var roles []rbacv1.ClusterRole
	for _, d := range manifests(t, "rbac.yaml") {
		var role rbacv1.ClusterRole
		if err := yaml.Unmarshal(d, &role); err != nil {
			t.Fatal(err)
		}
		if role.Kind == "ClusterRole" {
			roles = append(roles, role)
		}
	}
	if len(roles) == 0 {
		t.Fatal("rbac.yaml has no ClusterRole")
	}
	return roles
}

// serviceAccountConfig returns a client configuration that authenticates as slipway's
// ServiceAccount with a token the API server issues (TokenRequest), as a pod's is.
func serviceAccountConfig(t *testing.T, ctx context.Context, k *kubetest.Cluster) *rest.Config {
	t.Helper()
	tr, err := k.Client.CoreV1().ServiceAccounts(systemNS).CreateToken(ctx, serviceAccount, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for the ServiceAccount: %v", err)
	}
	cfg := rest.AnonymousClientConfig(k.Config)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

// can asks the API server whether the client's user may verb resource (optionally
// resource/subresource) of group in namespace ns ("" for the cluster).
func can(t *testing.T, ctx context.Context, c kubernetes.Interface, ns, group, res, verb string) bool {
	t.Helper()
	res, sub, _ := strings.Cut(res, "/")
	r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
		Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: ns, Group: group, Resource: res, Subresource: sub, Verb: verb,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectAccessReview: %v", err)
	}
	return r.Status.Allowed
}

// readyPod waits for the Deployment's pod other than not to be Ready and returns it.
func readyPod(t *testing.T, ctx context.Context, c kubernetes.Interface, not string) *corev1.Pod {
	t.Helper()
	var ready *corev1.Pod
	defer func() {
		if t.Failed() {
			// Why not: a refusal by Pod Security admission, an unbound claim, ...
			events, _ := c.CoreV1().Events(systemNS).List(ctx, metav1.ListOptions{})
			for _, e := range events.Items {
				t.Logf("event: %s %s: %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
	}()
	slipwaytest.Eventually(t, time.Minute, "slipway's pod Ready", func() bool {
		pods, err := c.CoreV1().Pods(systemNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=slipway"})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range pods.Items {
			if p.Name != not && p.DeletionTimestamp == nil && podReady(&p) {
				ready = &pods.Items[i]
				return true
			}
		}
		return false
	})
	return ready
}

// eventuallyPod waits for a pod of the managed namespace with the labels of selector.
func eventuallyPod(t *testing.T, ctx context.Context, c kubernetes.Interface, selector string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	slipwaytest.Eventually(t, time.Minute, "a pod "+selector, func() bool {
		pods, err := c.CoreV1().Pods(managedNS).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 {
			return false
		}
		pod = &pods.Items[0]
		return true
	})
	return pod
}

func podReady(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
	})
}

// podClaim returns the claim of the pod's data volume.
func podClaim(p *corev1.Pod) string {
	for _, v := range p.Spec.Volumes {
		if v.Name == "data" && v.PersistentVolumeClaim != nil {
			return v.PersistentVolumeClaim.ClaimName
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }
