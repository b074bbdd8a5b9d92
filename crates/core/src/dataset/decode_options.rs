//! What decoding does with the metadata that changes a photo's pixels: the EXIF orientation
//! (a phone stores a portrait photo sideways and says so) and an embedded ICC colour profile.
//! natview applies both by default, so that every image is upright and in sRGB; PIL, and so
//! torchvision's and timm's data loaders, apply neither unless asked. An encoder trained on
//! pixels read that way may be embedded the same way with [`DecodeOptions::AS_PIL`].

use super::decode::IMAGE_PIPELINE;

/// Whether EXIF orientation and ICC profiles are applied when an image is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecodeOptions {
    /// Turn the image upright as its EXIF orientation says (JPEG, PNG, WebP, TIFF). HEIF's
    /// rotation and mirroring are part of its container, not metadata, and always applied.
    pub orientation: bool,
    /// Convert the pixels from an embedded ICC profile to sRGB (otherwise they are taken as
    /// sRGB as they are).
    pub colour_profile: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self::APPLY_ALL
    }
}

impl DecodeOptions {
    /// natview's default: orientation and colour profile applied.
    pub const APPLY_ALL: Self = Self {
        orientation: true,
        colour_profile: true,
    };

    /// As PIL reads a file by default: stored pixels as they are, no orientation, no profile.
    pub const AS_PIL: Self = Self {
        orientation: false,
        colour_profile: false,
    };

    /// How images decoded with these options are decoded and resized, as recorded with their
    /// embeddings ([`IMAGE_PIPELINE`] for the default, so that workspaces made before the
    /// options existed stay valid).
    pub fn pipeline(&self) -> String {
        let mut text = if self.colour_profile {
            IMAGE_PIPELINE.to_string()
        } else {
            IMAGE_PIPELINE.replace("ICC profiles to sRGB (moxcms)", "ICC profiles ignored")
        };
        if !self.orientation {
            text.push_str("; EXIF orientation ignored");
        }
        text
    }

    /// The options whose [`DecodeOptions::pipeline`] is `text` (how a set of embeddings was
    /// decoded, so that a query image is decoded the same way); `None` for another text.
    pub fn of_pipeline(text: &str) -> Option<Self> {
        [
            Self::APPLY_ALL,
            Self::AS_PIL,
            Self {
                orientation: false,
                colour_profile: true,
            },
            Self {
                orientation: true,
                colour_profile: false,
            },
        ]
        .into_iter()
        .find(|o| o.pipeline() == text)
    }

    /// What is not applied, for messages ("" for the default).
    pub fn describe(&self) -> &'static str {
        match (self.orientation, self.colour_profile) {
            (true, true) => "",
            (false, true) => "EXIF orientation ignored",
            (true, false) => "ICC profiles ignored",
            (false, false) => "EXIF orientation and ICC profiles ignored",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_choice_has_its_own_pipeline_and_the_default_is_the_recorded_one() {
        let all = [
            DecodeOptions::APPLY_ALL,
            DecodeOptions::AS_PIL,
            DecodeOptions {
                orientation: false,
                colour_profile: true,
            },
            DecodeOptions {
                orientation: true,
                colour_profile: false,
            },
        ];
        let texts: std::collections::HashSet<String> = all.iter().map(|o| o.pipeline()).collect();
        assert_eq!(texts.len(), 4);
        for options in all {
            assert_eq!(
                DecodeOptions::of_pipeline(&options.pipeline()),
                Some(options)
            );
        }
        assert_eq!(DecodeOptions::of_pipeline("an older natview"), None);
        assert_eq!(DecodeOptions::default().pipeline(), IMAGE_PIPELINE);
        assert!(DecodeOptions::AS_PIL
            .pipeline()
            .contains("ICC profiles ignored"));
    }
}
