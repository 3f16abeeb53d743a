package kubernetes_test

import (
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// testKube is a test cluster named by SLIPWAY_TEST_KUBECONFIG (temporary, until the shared
// helper lands).
type testKube struct {
	Config *rest.Config
	Client kubernetes.Interface
}

func sharedKube(t *testing.T) *testKube {
	t.Helper()
	path := os.Getenv("SLIPWAY_TEST_KUBECONFIG")
	if path == "" {
		t.Skip("SLIPWAY_TEST_KUBECONFIG not set")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testKube{Config: cfg, Client: c}
}

func (k *testKube) Namespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + "-" + time.Now().Format("150405000")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := k.Client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}
