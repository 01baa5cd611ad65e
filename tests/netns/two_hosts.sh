#!/bin/bash
# two_hosts.sh: runs `mpirun -np 2` of a command across two "hosts" on this
# machine: network namespaces (hostA 10.231.77.1 and hostB 10.231.77.2,
# each with its own UTS hostname and a veth end named hug0), Open MPI
# launching the remote rank through an rsh agent that runs `ip netns exec`,
# TCP over the veth pair only. The namespaces are made for this run (names
# unique to it) and removed on exit. Needs root; exits 77 with a message
# when namespaces cannot be made (a container without CAP_SYS_ADMIN).
#
#   tests/netns/two_hosts.sh COMMAND ARGS...     (e.g. build/bin/hug train r.json)
set -u
skip() { echo "two_hosts.sh: skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (ip netns)"
for c in ip unshare mpirun; do
	command -v $c >/dev/null 2>&1 || skip "no $c"
done
tag=$$
A=hugpA$tag B=hugpB$tag VA=hpa$tag VB=hpb$tag
work=$(mktemp -d /tmp/hug-netns-XXXXXX)
cleanup() {
	ip netns del $A 2>/dev/null
	ip netns del $B 2>/dev/null
	ip link del $VA 2>/dev/null
	rm -rf /etc/netns/$A /etc/netns/$B "$work"
}
trap cleanup EXIT
ip netns add $A 2>/dev/null || skip "cannot create network namespaces (ip netns add)"
ip netns add $B 2>/dev/null || skip "cannot create a second network namespace"
set -e
ip link add $VA type veth peer name $VB
ip link set $VA netns $A
ip link set $VB netns $B
ip -n $A link set $VA name hug0
ip -n $B link set $VB name hug0
ip -n $A addr add 10.231.77.1/24 dev hug0
ip -n $B addr add 10.231.77.2/24 dev hug0
for n in $A $B; do
	ip -n $n link set lo up
	ip -n $n link set hug0 up
	mkdir -p /etc/netns/$n
	printf '127.0.0.1 localhost\n10.231.77.1 hostA\n10.231.77.2 hostB\n' >/etc/netns/$n/hosts
done
printf 'hostA slots=1\nhostB slots=1\n' >"$work/hosts"
# the agent: Open MPI calls it as `agent [ssh options] HOST COMMAND...`
cat >"$work/agent.sh" <<AGENT
#!/bin/bash
while [ \$# -gt 0 ]; do
	case "\$1" in
	-o|-l|-p|-i|-F|-E|-b|-c|-m|-e|-J) shift 2 ;;
	-*) shift ;;
	*) break ;;
	esac
done
host=\$1; shift
case "\$host" in
hostA|10.231.77.1) ns=$A ;;
hostB|10.231.77.2) ns=$B ;;
*) echo "agent: unknown host '\$host'" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" unshare --uts \\
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \\
	sh -c 'hostname "\$0" && exec sh -c "\$1"' "\$host" "\$*"
AGENT
chmod +x "$work/agent.sh"
set +e
ip netns exec $A unshare --uts sh -c 'hostname hostA; exec "$@"' sh \
	mpirun -np 2 --hostfile "$work/hosts" --mca plm_rsh_agent "$work/agent.sh" \
	--mca btl tcp,self --mca btl_tcp_if_include hug0 --mca oob_tcp_if_include hug0 \
	--mca mpi_yield_when_idle 1 -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS "$@"
