//! A DNS server for tests, on a loopback UDP port: answers A queries from a table of names, with
//! NXDOMAIN for unknown names, and can refuse (SERVFAIL) or stay silent for chosen names.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use tokio::net::UdpSocket;

/// How the server answers one name (lower-case, with the trailing dot).
#[derive(Clone, Debug)]
pub enum Answer {
    A(Vec<Ipv4Addr>),
    ServFail,
    Silent,
}

pub struct FakeDns {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDns {
    pub async fn start(table: HashMap<String, Answer>) -> FakeDns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind fake DNS");
        let addr = socket.local_addr().unwrap();
        let table = Arc::new(table);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let Some(question) = query.queries.first().cloned() else {
                    continue;
                };
                let name = question.name().to_ascii().to_ascii_lowercase();
                let mut response = Message::response(query.metadata.id, query.metadata.op_code);
                response.metadata.recursion_desired = query.metadata.recursion_desired;
                response.metadata.recursion_available = true;
                response.metadata.message_type = MessageType::Response;
                response.add_query(question.clone());
                match table.get(&name) {
                    Some(Answer::Silent) => continue,
                    Some(Answer::ServFail) => {
                        response.metadata.response_code = ResponseCode::ServFail
                    }
                    Some(Answer::A(addresses)) => {
                        for address in addresses {
                            response.add_answer(Record::from_rdata(
                                question.name().clone(),
                                60,
                                RData::A(A(*address)),
                            ));
                        }
                    }
                    None => response.metadata.response_code = ResponseCode::NXDomain,
                }
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        FakeDns { addr, task }
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}
