/// Portico's own annotations.
public enum Annotations {
    /// On a LoadBalancer Service: serve the Ingresses of this IngressClass on its addresses.
    public static let ingressClass = "portico.dev/ingress-class"
    /// On a Service: send a PROXY protocol header (`v1` or `v2`; UDP: `v2` only) to its endpoints.
    public static let proxyProtocol = "portico.dev/proxy-protocol"
    /// On a LoadBalancer Service: comma-separated CIDRs (a router in front) whose connections
    /// start with a PROXY protocol header carrying the real client address.
    public static let acceptProxyProtocolFrom = "portico.dev/accept-proxy-protocol-from"
    /// On an ingress front: `namespace/name` of the `kubernetes.io/tls` Secret served to
    /// clients whose SNI matches no Ingress TLS host (else the oldest Ingress's certificate).
    public static let defaultCertificate = "portico.dev/default-certificate"
    /// On a LoadBalancer Service: the VRRP VRID (1-255) of its virtual addresses.
    public static let vrrpVirtualRouterID = "portico.dev/vrrp-vrid"
    /// On a LoadBalancer Service: the node (`--node`) that should hold its addresses.
    public static let vrrpPreferredNode = "portico.dev/vrrp-preferred-node"
    /// Every Portico annotation on Services, for typo detection.
    public static let serviceAnnotations: Set<String> = [
        ingressClass, proxyProtocol, acceptProxyProtocolFrom, defaultCertificate, vrrpVirtualRouterID,
        vrrpPreferredNode,
    ]
}
