//! tonic (gRPC) served on endpoint listeners (`--features tonic`): the standard health
//! service, called by tonic's own client.
#![cfg(feature = "tonic")]

use endpoints::service::tonic_incoming;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_check_over_an_endpoint_listener() {
    for desc in ["tcp:0:interface=127.0.0.1"] {
        let listener = endpoints::listen(desc).await.expect("listen");
        let addr = listener.local_addr().expect("bound").ip().expect("ip");
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic_incoming(listener)),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let mut client = HealthClient::new(channel);
        let reply = client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("check");
        assert_eq!(
            reply.into_inner().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{desc}"
        );
    }
}
