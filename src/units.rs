//! Units of likelihood. Inside the library every likelihood is in nats per image; bits per
//! dimension appear only when printing, through [`bits_per_dim`].

/// Converts a negative log-likelihood in nats per image to bits per dimension
/// (`nats / (dims * ln 2)`), where `dims` is the number of pixel values per image (c*h*w).
pub fn bits_per_dim(nll_nats_per_image: f64, dims: usize) -> f64 {
    nll_nats_per_image / (dims as f64 * std::f64::consts::LN_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bit_per_binary_pixel_is_ln2_nats_each() {
        let dims = 784;
        let nats = dims as f64 * std::f64::consts::LN_2;
        assert!((bits_per_dim(nats, dims) - 1.0).abs() < 1e-12);
    }
}
