package kubetest

import "testing"

func TestNamespacePrefix(t *testing.T) {
	for test, want := range map[string]string{
		"TestShared_Pods":   "testshared-pods-",
		"TestX/sub_test#01": "testx-sub-test-01-",
		"___":               "test-",
		"TestAVeryLongNameThatGoesOnAndOnAndOnForeverMore/x":      "testaverylongnamethatgoesonandonandonforevermore-x-",
		"TestAVeryLongNameThatGoesOnAndOnAndOnForeverMoreAndMore": "testaverylongnamethatgoesonandonandonforevermorean-",
	} {
		if got := namespacePrefix(test); got != want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", test, got, want)
		}
	}
}
