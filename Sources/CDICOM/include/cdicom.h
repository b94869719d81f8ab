#ifndef MEDSYNTH_CDICOM_H
#define MEDSYNTH_CDICOM_H

// A plain C face on DCMTK (Debian: libdcmtk-dev) for the Datasets target: parse a DICOM file
// held in memory, decompress it, and hand back one frame of modality values (stored value x
// Rescale Slope + Rescale Intercept) as floats, with the header fields the caller needs. No DCMTK
// (C++) type crosses this header. Only `Sources/Datasets/DICOM.swift` calls it.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Why `cdicom_open` or `cdicom_read_frame` failed.
typedef enum {
    CDICOM_OK = 0,
    /// The data ends before the header or an element says it should.
    CDICOM_TRUNCATED = 1,
    /// Not parseable as DICOM, or header fields that contradict each other.
    CDICOM_CORRUPT = 2,
    /// Valid DICOM that this reader does not handle (transfer syntax, photometric, bit depth, frames).
    CDICOM_UNSUPPORTED = 3,
    /// Rows x Columns is over the caller's limit (refused before decompressing or allocating).
    CDICOM_TOO_LARGE = 4,
    /// The dataset has no Pixel Data (7FE0,0010) element.
    CDICOM_NO_PIXEL_DATA = 5,
} cdicom_status;

/// The header fields of one image (after decompression, when the file was compressed).
typedef struct {
    int32_t rows, columns;
    /// 1 (gray) or 3 (colour).
    int32_t samples_per_pixel;
    int32_t bits_allocated, bits_stored, high_bit;
    /// 0 unsigned, 1 two's complement.
    int32_t pixel_representation;
    /// 0 interleaved (RGBRGB...), 1 planar (RR..GG..BB..).
    int32_t planar_configuration;
    /// Number of Frames (1 when absent).
    int32_t frames;
    double rescale_slope, rescale_intercept;
    /// 1 when Window Center and Window Width are both present (their first values are used).
    int32_t has_window;
    double window_center, window_width;
    /// NUL-terminated, trailing spaces removed; empty when absent.
    char photometric[32];
    char modality[20];
    /// The file's transfer syntax UID (before decompression), and its DCMTK name.
    char transfer_syntax[68];
    char transfer_syntax_name[80];
} cdicom_info;

/// An opened, decoded DICOM image (opaque).
typedef struct cdicom_image cdicom_image;

/// Parses `length` bytes of a DICOM file (with or without the 128-byte preamble), checks the
/// header (Rows x Columns <= `max_pixels`, one frame, 8 or 16 bits allocated, MONOCHROME1,
/// MONOCHROME2 or RGB) and decompresses the pixel data (RLE, JPEG, JPEG-LS). Fills `info` as far
/// as it got; on failure returns NULL, sets `*status` and writes a one-line reason into `error`.
/// The reason never quotes a patient attribute.
cdicom_image *cdicom_open(const uint8_t *bytes, size_t length, int64_t max_pixels, cdicom_info *info,
                          cdicom_status *status, char *error, size_t error_capacity);

/// Writes the first frame's modality values, Rows x Columns x Samples per Pixel floats,
/// interleaved HWC, into `out` (`count` must be exactly that). Returns CDICOM_OK or a status
/// with `error` filled.
cdicom_status cdicom_read_frame(cdicom_image *image, float *out, size_t count, char *error,
                                size_t error_capacity);

/// Frees an image from `cdicom_open` (NULL is ignored).
void cdicom_close(cdicom_image *image);

/// Inflates `length` bytes of raw deflate data (RFC 1951, as the Deflated Explicit VR Little
/// Endian transfer syntax stores a dataset) through a small buffer, keeping nothing: returns how
/// many bytes they inflate to (up to where the data ends), `limit` + 1 as soon as that passes
/// `limit`, or -1 when they are not deflate data.
int64_t cdicom_inflated_length(const uint8_t *bytes, size_t length, int64_t limit);

// MARK: - Writing test files

/// Transfer syntaxes `cdicom_write_test_file` can write.
typedef enum {
    CDICOM_WRITE_EXPLICIT_LE = 0,
    CDICOM_WRITE_IMPLICIT_LE = 1,
    CDICOM_WRITE_RLE = 2,
    /// JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, SV1): 1.2.840.10008.1.2.4.70.
    CDICOM_WRITE_JPEG_LOSSLESS_SV1 = 3,
    CDICOM_WRITE_JPEG_LS_LOSSLESS = 4,
    CDICOM_WRITE_DEFLATED_LE = 5,
    CDICOM_WRITE_EXPLICIT_BE = 6,
} cdicom_write_syntax;

/// What a test file holds. Strings are NUL-terminated; NULL leaves the attribute out.
typedef struct {
    int32_t rows, columns, samples_per_pixel, bits_allocated, bits_stored, pixel_representation;
    /// Written as Number of Frames when > 1.
    int32_t frames;
    const char *photometric;
    const char *modality;
    int32_t has_rescale;
    double rescale_slope, rescale_intercept;
    int32_t has_window;
    double window_center, window_width;
    /// Planted identifiers: Patient's Name, Patient ID, Patient's Birth Date, Study Date.
    const char *patient_name, *patient_id, *birth_date, *study_date;
    cdicom_write_syntax syntax;
    /// 1: write no Pixel Data element.
    int32_t omit_pixel_data;
    /// Planar Configuration written for colour (0: `values` interleaved, 1: `values` planar).
    int32_t planar_configuration;
} cdicom_write_spec;

/// Test-only: writes a DICOM file (with preamble and meta header) whose stored values are
/// `values` (frames x rows x columns x samples, interleaved; each masked to Bits Stored and
/// written in Bits Allocated). Returns 0, or -1 with `error` filled.
int cdicom_write_test_file(const char *path, const cdicom_write_spec *spec, const int32_t *values,
                           size_t count, char *error, size_t error_capacity);

#ifdef __cplusplus
}
#endif

#endif
