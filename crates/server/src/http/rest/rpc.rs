//! Calling the gRPC services in-process, through the same layers a gRPC
//! client's call passes (telemetry, then the gate: token, role table, limits,
//! deadline), with messages built from the descriptors rather than the
//! generated types, so any route can name any RPC.

use std::str::FromStr;

use billing_domain::access::Caller;
use billing_provider_api::http::HeaderInjector;
use bytes::Buf;
use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::service::Routes;
use tonic::{Request, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::gate::{GateLayer, GateService};
use crate::telemetry::rpc::RpcService;

/// The gRPC server's services behind its layers, callable from HTTP.
pub type Services = RpcService<GateService<Routes>>;

#[derive(Clone)]
pub struct Rpcs {
    services: Services,
    gate: GateLayer,
    pool: DescriptorPool,
    /// Each call's deadline: within the HTTP request's own time limit, so a
    /// slow call is answered `DEADLINE_EXCEEDED` as JSON, not cut off.
    deadline: std::time::Duration,
}

impl std::fmt::Debug for Rpcs {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Rpcs").finish_non_exhaustive()
    }
}

impl Rpcs {
    /// The services as HTTP requests reach them, within `request_timeout`
    /// (`server.request_timeout_seconds`, the HTTP side's limit).
    pub fn new(services: Services, gate: GateLayer, request_timeout: std::time::Duration) -> anyhow::Result<Self> {
        Ok(Rpcs {
            services,
            gate,
            pool: contract_pool()?,
            deadline: request_timeout.mul_f64(0.9),
        })
    }

    /// `billing.v1.Service/Method`, or `None` when the contract has no such RPC.
    pub fn method(&self, name: &str) -> Option<MethodDescriptor> {
        method_in(&self.pool, name)
    }

    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// Who `headers` say the caller is, as the gate would decide.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, Status> {
        self.gate.authenticate(headers)
    }

    /// Calls `method` with `message`, as the caller whose headers these are.
    pub async fn call(
        &self,
        method: &MethodDescriptor,
        message: DynamicMessage,
        headers: &http::HeaderMap,
    ) -> Result<DynamicMessage, Status> {
        // Who calls, and the trace: the RPC's span is the child of this
        // request's HTTP span.
        let mut passed = http::HeaderMap::new();
        if let Some(token) = headers.get(http::header::AUTHORIZATION) {
            passed.insert(http::header::AUTHORIZATION, token.clone());
        }
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut HeaderInjector(&mut passed));
        });
        let mut request = Request::new(message);
        *request.metadata_mut() = MetadataMap::from_headers(passed);
        request.set_timeout(self.deadline);
        let path = PathAndQuery::from_str(&format!("/{}/{}", method.parent_service().full_name(), method.name()))
            .map_err(|error| Status::internal(format!("an RPC path does not parse: {error}")))?;
        let mut client = tonic::client::Grpc::new(self.services.clone());
        client
            .ready()
            .await
            .map_err(|error| Status::unavailable(format!("the services are not ready: {error}")))?;
        let codec = DynamicCodec {
            output: method.output(),
        };
        client
            .unary(request, path, codec)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Calls `method` (`billing.v1.Service/Method`) with a generated message.
    pub async fn call_typed<Request: Message, Reply: Message + Default>(
        &self,
        method: &str,
        request: &Request,
        headers: &http::HeaderMap,
    ) -> Result<Reply, Status> {
        let method = self
            .method(method)
            .ok_or_else(|| Status::internal(format!("no RPC {method} in the contract")))?;
        let message = DynamicMessage::decode(method.input(), request.encode_to_vec().as_slice())
            .map_err(|error| Status::internal(format!("a request does not transcode: {error}")))?;
        let reply = self.call(&method, message, headers).await?;
        Reply::decode(reply.encode_to_vec().as_slice())
            .map_err(|error| Status::internal(format!("a reply does not transcode: {error}")))
    }
}

/// The RPC `billing.v1.Service/Method` of `pool`.
pub fn method_in(pool: &DescriptorPool, name: &str) -> Option<MethodDescriptor> {
    let (service, method) = name.split_once('/')?;
    pool.get_service_by_name(service)?
        .methods()
        .find(|candidate| candidate.name() == method)
}

/// `billing.v1` with what it imports, and `google.rpc`'s error details
/// (which error answers carry).
pub fn contract_pool() -> anyhow::Result<DescriptorPool> {
    let mut pool = DescriptorPool::decode(billing_proto::FILE_DESCRIPTOR_SET)?;
    pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)?;
    Ok(pool)
}

/// Protobuf encoding of messages known only by their descriptor.
#[derive(Clone)]
struct DynamicCodec {
    output: MessageDescriptor,
}

struct DynamicEncoder;

struct DynamicDecoder(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.output.clone())
    }
}

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, buffer: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buffer)
            .map_err(|error| Status::internal(format!("a request does not encode: {error}")))
    }
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        let bytes = buffer.copy_to_bytes(buffer.remaining());
        DynamicMessage::decode(self.0.clone(), bytes)
            .map(Some)
            .map_err(|error| Status::internal(format!("a response does not decode: {error}")))
    }
}
