//! Coalescing slider requests: while a slider moves the page asks for a new image at every
//! step, and only the latest one matters. Requests to `/api/decode?channel=NAME` that
//! wait in the queue together are superseded by the last one of the same NAME, so a burst
//! costs one decode per channel instead of one per request.

/// The channel of a decode request (`/api/decode?channel=NAME`), if it names one.
pub fn channel<'a>(method: &str, url: &'a str) -> Option<&'a str> {
    let (path, query) = url.split_once('?')?;
    if method != "POST" || path != "/api/decode" {
        return None;
    }
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("channel="))
        .filter(|name| !name.is_empty())
}

/// For each queued request (method, URL), in arrival order: whether a later request of
/// the same channel supersedes it.
pub fn superseded(requests: &[(&str, &str)]) -> Vec<bool> {
    requests
        .iter()
        .enumerate()
        .map(|(i, &(method, url))| match channel(method, url) {
            Some(name) => requests[i + 1..]
                .iter()
                .any(|&(m, u)| channel(m, u) == Some(name)),
            None => false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_request_of_each_channel_is_kept() {
        let queue = [
            ("POST", "/api/decode?channel=edit"),
            ("POST", "/api/decode?channel=dims"),
            ("POST", "/api/decode"),
            ("POST", "/api/decode?channel=edit"),
            ("GET", "/api/info"),
            ("POST", "/api/decode?channel=edit"),
            ("POST", "/api/decode"),
        ];
        assert_eq!(
            superseded(&queue),
            [true, false, false, true, false, false, false]
        );
    }

    #[test]
    fn other_endpoints_and_empty_channels_are_never_superseded() {
        let queue = [
            ("POST", "/api/samples?channel=edit"),
            ("GET", "/api/decode?channel=edit"),
            ("POST", "/api/decode?channel="),
            ("POST", "/api/decode?channel="),
            ("POST", "/api/samples?channel=edit"),
        ];
        assert!(superseded(&queue).iter().all(|s| !s));
        assert_eq!(channel("POST", "/api/decode?x=1&channel=a"), Some("a"));
    }
}
