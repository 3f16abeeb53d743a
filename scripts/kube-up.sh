#!/usr/bin/env bash
# A real Kubernetes control plane on this machine, for slipway's kubernetes platform tests:
# etcd, kube-apiserver, kube-controller-manager and kube-scheduler, with kwok standing in for
# the kubelet of one fake node, so that pods are scheduled and become Ready without
# containers. Everything listens on 127.0.0.1 only, on ports that were free.
#
#   scripts/kube-up.sh build      build the pinned binaries from Go modules, once (cached)
#   scripts/kube-up.sh up DIR     start a cluster with its state, PKI and logs in DIR
#   scripts/kube-up.sh down DIR   stop the cluster started in DIR (its logs stay in DIR)
#   scripts/kube-up.sh env DIR    print the shell exports to use the cluster in DIR
#   scripts/kube-up.sh cache      print the directory of the cached binaries (builds first)
#   scripts/kube-up.sh cached     print it if the binaries are built, else fail
#
# The build takes about ten minutes on two cores the first time; the binaries, the Gateway API
# CRDs and kwok's stages are then cached in $SLIPWAY_KUBE_CACHE (default
# ~/.cache/slipway/kube), under a key made of the pinned versions and the Go version, so that
# later builds return at once. `up` needs openssl.
#
# Pods labelled slipway.dev/test-unready=true go Running but never Ready (a revision whose
# readiness probe never passes); every other pod is Ready within about a second.
#
# With SLIPWAY_KUBE_OWNER_PID set, `up` also leaves a watchdog that stops the cluster when
# that process exits, so that a test binary killed by a timeout does not leave it running.
set -euo pipefail

# The pinned versions. kube-apiserver and friends come from k8s.io/kubernetes, whose staging
# modules (k8s.io/api, k8s.io/client-go, ...) are taken at the matching v0.x.y.
readonly KUBE_VERSION=v1.36.3
readonly STAGING_VERSION=v0.36.3
readonly ETCD_RELEASE=v3.6.8
readonly KWOK_VERSION=v0.8.0
readonly GATEWAY_API_VERSION=v1.6.3
# RECIPE changes when the way the cache is built changes (flags, files), to build anew.
readonly RECIPE=1

# The label that keeps a pod unready (see the stage pod-unready below).
readonly UNREADY_LABEL=slipway.dev/test-unready
# The fake node's name and the annotation kwok selects the nodes it manages by.
readonly NODE_NAME=kwok-node-0
readonly NODE_ANNOTATION=kwok.x-k8s.io/node
# The components, in the order they start (stop_all stops them in its own order).
readonly COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
# How long `up` waits for the API server, the node and the CRDs, in seconds.
readonly START_TIMEOUT=${SLIPWAY_KUBE_START_TIMEOUT:-120}

die() {
	echo "kube-up: $*" >&2
	exit 1
}

log() {
	echo "kube-up: $*" >&2
}

usage() {
	sed -n '7,12p' "$0" | sed 's/^# *//' >&2
	exit 2
}

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 is needed${2:+ ($2)} but is not on PATH"
}

cache_root() {
	echo "${SLIPWAY_KUBE_CACHE:-${HOME:?HOME is not set}/.cache/slipway/kube}"
}

# cache_dir prints the cache directory of the pinned versions built with this Go.
cache_dir() {
	need go "Go builds the cluster's binaries"
	local gov
	gov=$(go env GOVERSION) || die "go env GOVERSION failed"
	echo "$(cache_root)/k8s-${KUBE_VERSION}_etcd-${ETCD_RELEASE}_kwok-${KWOK_VERSION}_gwapi-${GATEWAY_API_VERSION}_${gov}_r${RECIPE}"
}

# ---------------------------------------------------------------------------------------------
# build

# module_dir prints the directory of module@version in the module cache, downloading it.
module_dir() {
	local json dir
	# Outside any module, so that no go.mod around the caller is read or changed.
	json=$(cd / && GOFLAGS='' GOWORK=off go mod download -json "$1@$2") ||
		die "cannot download $1@$2 from the Go module proxy"
	dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[ -d "$dir" ] || die "no directory for $1@$2 in the module cache"
	echo "$dir"
}

# scratch_module makes a module in $1 named $2 whose tools.go imports the packages $3...,
# with replace directives read from stdin (lines "old => new version").
scratch_module() {
	local dir=$1 name=$2
	shift 2
	mkdir -p "$dir"
	{
		echo "module $name"
		echo
		echo "go 1.26"
		local r
		while read -r r; do
			[ -n "$r" ] && echo "replace $r"
		done
	} >"$dir/go.mod"
	{
		echo "//go:build tools"
		echo
		echo "// Package tools pins the commands that scripts/kube-up.sh builds."
		echo "package tools"
		echo
		echo "import ("
		local p
		for p in "$@"; do
			echo "	_ \"$p\""
		done
		echo ")"
	} >"$dir/tools.go"
}

# go_build builds the packages $3... of the scratch module in $1 into $2, with ldflags $LDFLAGS.
go_build() {
	local dir=$1 out=$2
	shift 2
	(
		cd "$dir"
		export GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off CGO_ENABLED=0
		go mod tidy >/dev/null 2>"$dir/tidy.log" || {
			cat "$dir/tidy.log" >&2
			die "go mod tidy failed in $dir"
		}
		go build -trimpath -ldflags "-s -w ${LDFLAGS:-}" -o "$out/" "$@"
	) || die "building $* failed (module in $1)"
}

build() {
	need go "Go builds the cluster's binaries"
	local dir
	dir=$(cache_dir)
	if [ -f "$dir/complete" ]; then
		echo "$dir"
		return
	fi
	mkdir -p "$dir"
	# One build at a time: concurrent callers (test binaries in parallel) wait for the first.
	exec 9>"$dir/lock"
	flock 9
	if [ -f "$dir/complete" ]; then
		echo "$dir"
		return
	fi
	local start=$SECONDS src="$dir/src" bin="$dir/bin"
	rm -rf "$bin" "$dir/crds" "$dir/stages"
	mkdir -p "$bin" "$dir/crds" "$dir/stages"
	log "building the test cluster's binaries into $dir (about 10 minutes the first time)"

	local t=$SECONDS
	log "etcd $ETCD_RELEASE"
	scratch_module "$src/etcd" slipway.dev/kube-up/etcd \
		go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 </dev/null
	(cd "$src/etcd" && GOWORK=off go mod edit \
		-require=go.etcd.io/etcd/server/v3@"$ETCD_RELEASE" \
		-require=go.etcd.io/etcd/etcdctl/v3@"$ETCD_RELEASE")
	LDFLAGS="" go_build "$src/etcd" "$bin" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3
	# go build names the server after its module's last element but one: server.
	mv "$bin/server" "$bin/etcd"

	log "kubernetes $KUBE_VERSION (etcd took $((SECONDS - t)) s)"
	t=$SECONDS
	local kdir staging
	kdir=$(module_dir k8s.io/kubernetes "$KUBE_VERSION")
	# kubernetes requires its staging modules at v0.0.0 and replaces them with directories of
	# its own repository; a module that builds it replaces them with their published versions.
	staging=$(sed -n 's/^[[:space:]]*\(k8s\.io\/[a-z0-9-]*\) v0\.0\.0$/\1/p' "$kdir/go.mod" | sort -u)
	[ -n "$staging" ] || die "found no staging modules in $kdir/go.mod"
	local m
	for m in $staging; do
		echo "$m => $m $STAGING_VERSION"
	done | scratch_module "$src/kubernetes" slipway.dev/kube-up/kubernetes \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
	(cd "$src/kubernetes" && GOWORK=off go mod edit -require=k8s.io/kubernetes@"$KUBE_VERSION")
	local minor=${KUBE_VERSION#v1.}
	minor=${minor%%.*}
	local v ld=""
	for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld+=" -X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor"
		ld+=" -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
	done
	LDFLAGS=$ld go_build "$src/kubernetes" "$bin" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl

	log "kwok $KWOK_VERSION (kubernetes took $((SECONDS - t)) s)"
	scratch_module "$src/kwok" slipway.dev/kube-up/kwok sigs.k8s.io/kwok/cmd/kwok </dev/null
	(cd "$src/kwok" && GOWORK=off go mod edit -require=sigs.k8s.io/kwok@"$KWOK_VERSION")
	LDFLAGS="" go_build "$src/kwok" "$bin" sigs.k8s.io/kwok/cmd/kwok

	local kwok gw
	kwok=$(module_dir sigs.k8s.io/kwok "$KWOK_VERSION")
	cp "$kwok/kustomize/stage/node/fast/node-initialize.yaml" \
		"$kwok/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
		"$kwok/kustomize/stage/pod/fast/pod-ready.yaml" \
		"$kwok/kustomize/stage/pod/fast/pod-complete.yaml" \
		"$kwok/kustomize/stage/pod/fast/pod-delete.yaml" "$dir/stages/"
	gw=$(module_dir sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION")
	cp "$gw"/config/crd/standard/*.yaml "$dir/crds/"
	chmod -R u+w "$dir/stages" "$dir/crds"

	local b
	for b in etcd etcdctl kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
		[ -x "$bin/$b" ] || die "the build made no $bin/$b"
	done
	date -u +%FT%TZ >"$dir/complete"
	log "built in $((SECONDS - start)) s: $(du -sh "$dir" | cut -f1) in $dir"
	echo "$dir"
}

# ---------------------------------------------------------------------------------------------
# up

# free_port VAR sets VAR to a loopback TCP port that nothing listens on, below the
# ephemeral range (where the kernel picks the ports of :0) and not yet taken by this run.
taken_ports=" "
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 12000))
		case $taken_ports in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			taken_ports+="$p "
			printf -v "$1" '%s' "$p"
			return
		fi
	done
	die "found no free port on 127.0.0.1"
}

# pki writes a CA, the API server's serving certificate, a client certificate per user and
# the service-account key pair into $1, with openssl. EC P-256 keys: quick to make.
pki() {
	local d=$1
	mkdir -p "$d"
	cat >"$d/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ext_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[ext_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:10.96.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
[ext_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
CNF
	key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
	key "$d/ca.key"
	openssl req -x509 -new -config "$d/openssl.cnf" -extensions ext_ca -key "$d/ca.key" \
		-subj "/CN=slipway-test-ca" -days 3650 -out "$d/ca.crt" 2>/dev/null
	# cert NAME SUBJECT EXTENSIONS
	cert() {
		key "$d/$1.key"
		openssl req -new -config "$d/openssl.cnf" -key "$d/$1.key" -subj "$2" -out "$d/$1.csr" 2>/dev/null
		openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
			-set_serial "0x$(openssl rand -hex 16)" -days 3650 \
			-extfile "$d/openssl.cnf" -extensions "$3" -out "$d/$1.crt" 2>/dev/null
		rm "$d/$1.csr"
	}
	cert apiserver "/CN=kube-apiserver" ext_server
	cert admin "/O=system:masters/CN=slipway-test-admin" ext_client
	cert kube-controller-manager "/CN=system:kube-controller-manager" ext_client
	cert kube-scheduler "/CN=system:kube-scheduler" ext_client
	cert kwok "/O=system:masters/CN=kwok" ext_client
	key "$d/sa.key"
	openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

# kubeconfig USER: a kubeconfig for the client certificate USER, with the certificates inline.
kubeconfig() {
	local pki=$dir/pki
	cat <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: slipway-test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$pki/$1.crt")
    client-key-data: $(base64 -w0 "$pki/$1.key")
contexts:
- name: slipway-test
  context:
    cluster: slipway-test
    user: $1
current-context: slipway-test
KUBECONFIG
}

# start NAME [VAR=VALUE...] ARGS...: starts the binary NAME in the background, in an
# environment without ETCD_* variables (etcd reads each as a flag) and with VAR=VALUE, its
# output in DIR/logs and its PID in DIR/NAME.pid.
start() {
	local name=$1 env=() v
	shift
	for v in $(compgen -e); do
		case $v in ETCD_*) env+=(-u "$v") ;; esac
	done
	while [[ ${1:-} =~ ^[A-Z_]+= ]]; do
		env+=("$1")
		shift
	done
	env "${env[@]}" "$bin/$name" "$@" </dev/null >"$dir/logs/$name.log" 2>&1 8>&- &
	echo $! >"$dir/$name.pid"
	# Not a job of this shell's: stop_all's KILL is no news to report.
	disown $!
}

# check_alive dies, with the end of its log, when a started component has exited.
check_alive() {
	local c pid
	for c in "${COMPONENTS[@]}"; do
		[ -f "$dir/$c.pid" ] || continue
		pid=$(<"$dir/$c.pid")
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "kube-up: $c exited; the end of $dir/logs/$c.log:" >&2
			tail -n 30 "$dir/logs/$c.log" >&2 || true
			stop_all
			die "$c exited during start"
		fi
	done
}

# wait_for WHAT COMMAND...: runs COMMAND until it succeeds, checking the components on the way.
wait_for() {
	local what=$1 deadline=$((SECONDS + START_TIMEOUT))
	shift
	until "$@" >/dev/null 2>&1; do
		check_alive
		if ((SECONDS >= deadline)); then
			echo "kube-up: the last try at $what said:" >&2
			"$@" >&2 || true
			stop_all
			die "timed out after ${START_TIMEOUT}s waiting for $what (logs in $dir/logs)"
		fi
		sleep 0.2
	done
}

# kwok_config writes kwok's configuration: its own fast node and pod stages, except that the
# stage that makes pods Ready skips pods labelled $UNREADY_LABEL=true, and a stage of slipway's
# that makes those Running but never Ready.
kwok_config() {
	local s=$cache/stages f
	for f in node-initialize node-heartbeat-with-lease pod-complete pod-delete; do
		cat "$s/$f.yaml"
		echo "---"
	done
	# kwok's pod-ready, with one more requirement after its first line of matchExpressions.
	awk -v label="$UNREADY_LABEL" '
		{ print }
		/^    matchExpressions:$/ && !done {
			print "    - key: \x27.metadata.labels.\"" label "\"\x27"
			print "      operator: \x27NotIn\x27"
			print "      values:"
			print "      - \x27true\x27"
			done = 1
		}
		END { if (!done) exit 1 }
	' "$s/pod-ready.yaml" || die "kwok's pod-ready stage has no matchExpressions to extend"
	echo "---"
	cat <<STAGE
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: slipway-pod-unready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.labels."$UNREADY_LABEL"'
      operator: 'In'
      values:
      - 'true'
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
  next:
    statusTemplate: |
      {{ \$now := Now }}
      conditions:
      - lastTransitionTime: {{ \$now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ \$now | Quote }}
        status: "True"
        type: PodScheduled
      - lastTransitionTime: {{ \$now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: Ready
      - lastTransitionTime: {{ \$now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{ \$now | Quote }}
      {{ end }}
      {{ \$hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with \$hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      {{ end }}
      {{ \$podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with \$podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ \$now | Quote }}
STAGE
}

# node prints the fake node kwok manages: room for thousands of pods.
node() {
	cat <<NODE
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  annotations:
    $NODE_ANNOTATION: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $NODE_NAME
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
status:
  allocatable:
    cpu: "1000"
    memory: 4Ti
    pods: "5000"
    ephemeral-storage: 10Ti
  capacity:
    cpu: "1000"
    memory: 4Ti
    pods: "5000"
    ephemeral-storage: 10Ti
NODE
}

up() {
	need openssl "it makes the cluster's certificates"
	dir=$1
	local c
	for c in "${COMPONENTS[@]}"; do
		if [ -f "$dir/$c.pid" ] && kill -0 "$(<"$dir/$c.pid")" 2>/dev/null; then
			die "$dir already holds a running cluster ($c); run: $0 down $dir"
		fi
	done
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	cache=$(build)
	bin=$cache/bin
	local start_s=$SECONDS
	rm -rf "$dir/logs" "$dir/etcd" "$dir/stopped"
	mkdir -p "$dir/logs"
	pki "$dir/pki"

	# Concurrent ups take turns from choosing their ports until the API server listens on its
	# own, so that two clusters never pick the same free port.
	exec 8>"$(cache_root)/ports.lock"
	flock 8
	local etcd_port="" peer_port=""
	api_port="" # global: kubeconfig reads it
	free_port etcd_port
	free_port peer_port
	free_port api_port
	echo "$api_port" >"$dir/apiserver.port"
	local u
	for u in admin kube-controller-manager kube-scheduler kwok; do
		kubeconfig "$u" >"$dir/$u.kubeconfig"
	done
	kwok_config >"$dir/kwok.yaml"

	# The watchdog first, so that a failed start of an owned cluster is cleaned up too.
	if [ -n "${SLIPWAY_KUBE_OWNER_PID:-}" ]; then
		local self owner=$SLIPWAY_KUBE_OWNER_PID
		self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
		(
			while kill -0 "$owner" 2>/dev/null && [ ! -e "$dir/stopped" ]; do
				sleep 1
			done
			[ -e "$dir/stopped" ] || "$self" down "$dir"
		) </dev/null >>"$dir/logs/watchdog.log" 2>&1 8>&- &
		echo $! >"$dir/watchdog.pid"
	fi

	start etcd --name=default --data-dir="$dir/etcd" \
		--listen-client-urls="http://127.0.0.1:$etcd_port" \
		--advertise-client-urls="http://127.0.0.1:$etcd_port" \
		--listen-peer-urls="http://127.0.0.1:$peer_port" \
		--initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
		--initial-cluster="default=http://127.0.0.1:$peer_port" \
		--unsafe-no-fsync --log-level=warn

	local pki=$dir/pki
	start kube-apiserver \
		--etcd-servers="http://127.0.0.1:$etcd_port" \
		--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
		--tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
		--client-ca-file="$pki/ca.crt" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$pki/sa.pub" \
		--service-account-signing-key-file="$pki/sa.key" \
		--service-cluster-ip-range=10.96.0.0/16 \
		--authorization-mode=RBAC \
		--endpoint-reconciler-type=none \
		--allow-privileged=true \
		--profiling=false
	local kubectl=("$bin/kubectl" --kubeconfig="$dir/admin.kubeconfig")
	wait_for "the API server to be ready" "${kubectl[@]}" get --raw /readyz
	exec 8>&-

	start kube-controller-manager \
		--kubeconfig="$dir/kube-controller-manager.kubeconfig" \
		--secure-port=0 \
		--use-service-account-credentials=true \
		--service-account-private-key-file="$pki/sa.key" \
		--root-ca-file="$pki/ca.crt" \
		--cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
		--leader-elect=false \
		--profiling=false
	start kube-scheduler \
		--kubeconfig="$dir/kube-scheduler.kubeconfig" \
		--secure-port=0 \
		--leader-elect=false \
		--profiling=false
	# kwok also reads ~/.kwok/kwok.yaml: not this user's.
	start kwok HOME="$dir" \
		--kubeconfig="$dir/kwok.kubeconfig" \
		--config="$dir/kwok.yaml" \
		--manage-all-nodes=false \
		--manage-nodes-with-annotation-selector="$NODE_ANNOTATION=fake" \
		--node-ip=127.0.0.1 \
		--node-lease-duration-seconds=40 \
		--cidr=10.244.0.0/16

	node | "${kubectl[@]}" create -f - >/dev/null || { stop_all; die "cannot create the node"; }
	"${kubectl[@]}" create -f "$cache/crds" >/dev/null || { stop_all; die "cannot install the Gateway API CRDs"; }
	wait_for "node $NODE_NAME to be Ready" \
		"${kubectl[@]}" wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
	wait_for "the Gateway API CRDs to be established" \
		"${kubectl[@]}" wait --for=condition=Established crd --all --timeout=2s
	check_alive
	log "up in $((SECONDS - start_s)) s: export KUBECONFIG=$dir/admin.kubeconfig"
}

# ---------------------------------------------------------------------------------------------
# down

# stop_all stops the components of $dir: first the API server's clients together, then the
# API server, each with TERM (so that they flush their logs) and KILL after 10 s; then etcd
# with KILL, since its data is thrown away (it would take two seconds to stop on TERM).
stop_all() {
	touch "$dir/stopped"
	stop kwok kube-scheduler kube-controller-manager
	stop kube-apiserver
	SIGNAL=KILL stop etcd
	rm -rf "$dir/etcd"
	local pid
	if [ -f "$dir/watchdog.pid" ]; then
		pid=$(<"$dir/watchdog.pid")
		# The watchdog runs down itself when the owner has gone; it then ends on its own.
		[ "$pid" = "$PPID" ] || kill "$pid" 2>/dev/null || true
		rm -f "$dir/watchdog.pid"
	fi
}

# stop NAME...: sends the components NAME their signal ($SIGNAL, TERM by default) at once and
# waits until they have exited, killing those still running after 10 s.
stop() {
	local c pid pids=() names=()
	for c in "$@"; do
		[ -f "$dir/$c.pid" ] || continue
		pid=$(<"$dir/$c.pid")
		rm -f "$dir/$c.pid"
		if kill "-${SIGNAL:-TERM}" "$pid" 2>/dev/null; then
			pids+=("$pid")
			names+=("$c")
		fi
	done
	local i deadline=$((SECONDS + 10))
	for i in "${!pids[@]}"; do
		while kill -0 "${pids[i]}" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.05
		done
		if kill -0 "${pids[i]}" 2>/dev/null; then
			log "${names[i]} (pid ${pids[i]}) did not stop within 10 s; killing it"
			kill -KILL "${pids[i]}" 2>/dev/null || true
		fi
	done
}

down() {
	dir=$1
	[ -d "$dir" ] || die "$dir does not exist"
	dir=$(cd "$dir" && pwd)
	stop_all
}

print_env() {
	dir=$(cd "$1" && pwd) || die "$1 does not exist"
	[ -f "$dir/admin.kubeconfig" ] || die "no cluster in $dir (no admin.kubeconfig)"
	echo "export KUBECONFIG=$dir/admin.kubeconfig"
	echo "export PATH=$(cache_dir)/bin:\$PATH"
}

# ---------------------------------------------------------------------------------------------

main() {
	[ $# -ge 1 ] || usage
	local verb=$1
	shift
	case $verb in
	build)
		[ $# -eq 0 ] || usage
		build >/dev/null
		;;
	cache)
		[ $# -eq 0 ] || usage
		build
		;;
	cached)
		[ $# -eq 0 ] || usage
		local dir
		dir=$(cache_dir)
		[ -f "$dir/complete" ] || die "not built yet (no $dir/complete); run: $0 build"
		echo "$dir"
		;;
	up)
		[ $# -eq 1 ] || usage
		up "$1"
		;;
	down)
		[ $# -eq 1 ] || usage
		down "$1"
		;;
	env)
		[ $# -eq 1 ] || usage
		print_env "$1"
		;;
	*) usage ;;
	esac
}

main "$@"
