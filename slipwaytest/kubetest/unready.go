package kubetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UnreadyImageSuffix ends the image of a container whose pods UnreadyImages keeps unready.
const UnreadyImageSuffix = "-unready"

// unreadyPolicy is the MutatingAdmissionPolicy of UnreadyImages.
const unreadyPolicy = "slipway-test-unready-images"

// UnreadyImages makes the pods created in namespace ns from now on Running but never Ready
// when one of their containers' images ends in UnreadyImageSuffix (registry.example/web:v2-unready):
// a MutatingAdmissionPolicy of the cluster gives them UnreadyLabel as they are created. It is
// for pods whose labels the test does not write, such as those of a ReplicaSet a program under
// test makes from its own template. It returns once the API server applies the policy in ns;
// a cleanup unbinds it from ns.
func (k *Cluster) UnreadyImages(tb testing.TB, ns string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := k.Client.AdmissionregistrationV1()
	fail := admissionv1.Fail
	never := admissionv1.NeverReinvocationPolicy
	policy := &admissionv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: unreadyPolicy},
		Spec: admissionv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}},
			MatchConditions: []admissionv1.MatchCondition{{
				Name: "unready-image",
				// A pod without containers is invalid, but admission sees it before validation.
				Expression: fmt.Sprintf("has(object.spec.containers) && object.spec.containers.exists(c, c.image.endsWith(%q))", UnreadyImageSuffix),
			}},
			FailurePolicy:      &fail,
			ReinvocationPolicy: never,
			Mutations: []admissionv1.Mutation{{
				PatchType: admissionv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionv1.ApplyConfiguration{
					Expression: fmt.Sprintf("Object{metadata: Object.metadata{labels: {%q: \"true\"}}}", UnreadyLabel),
				},
			}},
		},
	}
	if _, err := adm.MutatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatalf("create the MutatingAdmissionPolicy that keeps pods unready: %v", err)
	}
	binding := &admissionv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: unreadyPolicy + "." + ns},
		Spec: admissionv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: unreadyPolicy,
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns},
			}},
		},
	}
	if _, err := adm.MutatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("bind the MutatingAdmissionPolicy that keeps pods unready to namespace %s: %v", ns, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adm.MutatingAdmissionPolicyBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			tb.Errorf("delete MutatingAdmissionPolicyBinding %s: %v", binding.Name, err)
		}
	})
	// The API server applies a policy once its caches hold it: ask with a pod that is not
	// stored (a dry run) until it comes back labelled.
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "unready-probe-"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "example.com/probe:v1" + UnreadyImageSuffix}}},
	}
	for {
		got, err := k.Client.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			tb.Fatalf("a dry-run pod in %s: %v", ns, err)
		}
		if got.Labels[UnreadyLabel] == "true" {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("the MutatingAdmissionPolicy %s does not label pods in %s after 30s", unreadyPolicy, ns)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
