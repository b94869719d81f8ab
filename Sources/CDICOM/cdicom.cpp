// DCMTK behind the plain C API of include/cdicom.h. Every DCMTK type stays in this file.
//
// NOTE: DCMTK's codecs are process-wide registrations; they are registered once (std::call_once)
// and never cleaned up. Its logger would print warnings on stderr; it is switched off so that
// nothing the library says reaches our output (errors come back as text through the C API).

#include "cdicom.h"

#include <zlib.h>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcrleerg.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/dcmjpls/djencode.h"
#include "dcmtk/dcmjpls/djrparam.h"
#include "dcmtk/oflog/oflog.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

struct cdicom_image {
    DcmFileFormat file;
    cdicom_info info;
};

namespace {

std::once_flag decodersOnce, encodersOnce;

void registerDecoders() {
    std::call_once(decodersOnce, [] {
        OFLog::configure(OFLogger::OFF_LOG_LEVEL);
        DcmRLEDecoderRegistration::registerCodecs();
        DJDecoderRegistration::registerCodecs();
        DJLSDecoderRegistration::registerCodecs();
    });
}

void registerEncoders() {
    registerDecoders();
    std::call_once(encodersOnce, [] {
        DcmRLEEncoderRegistration::registerCodecs();
        DJEncoderRegistration::registerCodecs();
        DJLSEncoderRegistration::registerCodecs();
    });
}

void setError(char *error, size_t capacity, const std::string &message) {
    if (error == nullptr || capacity == 0) return;
    std::snprintf(error, capacity, "%s", message.c_str());
}

/// Copies a string attribute (first value, trailing spaces trimmed) into a fixed buffer.
void copyString(DcmItem *item, const DcmTagKey &key, char *out, size_t capacity) {
    OFString value;
    out[0] = 0;
    if (item->findAndGetOFString(key, value).good()) {
        while (!value.empty() && value[value.length() - 1] == ' ') value.erase(value.length() - 1);
        std::snprintf(out, capacity, "%s", value.c_str());
    }
}

int32_t getUint16(DcmItem *item, const DcmTagKey &key, int32_t fallback) {
    Uint16 value = 0;
    return item->findAndGetUint16(key, value).good() ? int32_t(value) : fallback;
}

/// Reads the image header fields; returns a status and fills `error` for a bad header.
cdicom_status readHeader(DcmDataset *data, int64_t maxPixels, cdicom_info *info, char *error, size_t capacity) {
    info->rows = getUint16(data, DCM_Rows, 0);
    info->columns = getUint16(data, DCM_Columns, 0);
    info->samples_per_pixel = getUint16(data, DCM_SamplesPerPixel, 1);
    info->bits_allocated = getUint16(data, DCM_BitsAllocated, 0);
    info->bits_stored = getUint16(data, DCM_BitsStored, info->bits_allocated);
    info->high_bit = getUint16(data, DCM_HighBit, info->bits_stored - 1);
    info->pixel_representation = getUint16(data, DCM_PixelRepresentation, 0);
    info->planar_configuration = getUint16(data, DCM_PlanarConfiguration, 0);
    Sint32 frames = 1;
    info->frames = data->findAndGetSint32(DCM_NumberOfFrames, frames).good() ? frames : 1;
    Float64 value = 0;
    info->rescale_slope = data->findAndGetFloat64(DCM_RescaleSlope, value).good() ? value : 1.0;
    info->rescale_intercept = data->findAndGetFloat64(DCM_RescaleIntercept, value).good() ? value : 0.0;
    Float64 center = 0, width = 0;
    info->has_window = data->findAndGetFloat64(DCM_WindowCenter, center).good()
                               && data->findAndGetFloat64(DCM_WindowWidth, width).good()
                           ? 1 : 0;
    info->window_center = center;
    info->window_width = width;
    copyString(data, DCM_PhotometricInterpretation, info->photometric, sizeof info->photometric);
    copyString(data, DCM_Modality, info->modality, sizeof info->modality);

    if (!data->tagExists(DCM_PixelData)) {
        // NOTE: a file cut exactly between two elements before Pixel Data parses cleanly, so
        // "no image" and "cut short" cannot be told apart here; the message says both.
        setError(error, capacity, "DICOM: no Pixel Data element (7FE0,0010): the file holds no image, or was cut short before it");
        return CDICOM_NO_PIXEL_DATA;
    }
    if (info->rows <= 0 || info->columns <= 0) {
        setError(error, capacity, "DICOM: Rows and Columns must be present and positive (read "
                 + std::to_string(info->rows) + " x " + std::to_string(info->columns) + ")");
        return CDICOM_CORRUPT;
    }
    // Bounded before decompression allocates anything: Rows and Columns are 16-bit, so the
    // product cannot overflow.
    if (int64_t(info->rows) * int64_t(info->columns) > maxPixels) return CDICOM_TOO_LARGE;
    if (info->frames != 1) {
        setError(error, capacity, "DICOM: multi-frame image (" + std::to_string(info->frames)
                 + " frames) is not supported; store one frame per file");
        return info->frames < 1 ? CDICOM_CORRUPT : CDICOM_UNSUPPORTED;
    }
    if (info->bits_allocated != 8 && info->bits_allocated != 16) {
        setError(error, capacity, "DICOM: Bits Allocated " + std::to_string(info->bits_allocated)
                 + " is not supported (8 or 16)");
        return CDICOM_UNSUPPORTED;
    }
    if (info->bits_stored < 1 || info->bits_stored > info->bits_allocated || info->high_bit < info->bits_stored - 1
        || info->high_bit >= info->bits_allocated || info->pixel_representation < 0 || info->pixel_representation > 1) {
        setError(error, capacity, "DICOM: inconsistent pixel description (Bits Allocated "
                 + std::to_string(info->bits_allocated) + ", Bits Stored " + std::to_string(info->bits_stored)
                 + ", High Bit " + std::to_string(info->high_bit) + ", Pixel Representation "
                 + std::to_string(info->pixel_representation) + ")");
        return CDICOM_CORRUPT;
    }
    return CDICOM_OK;
}

/// The photometric interpretations we decode, checked after decompression (the JPEG decoder
/// turns YBR into RGB and says so in the header).
cdicom_status checkPhotometric(const cdicom_info *info, char *error, size_t capacity) {
    const std::string p = info->photometric;
    const bool gray = p == "MONOCHROME1" || p == "MONOCHROME2";
    if ((gray && info->samples_per_pixel == 1) || (p == "RGB" && info->samples_per_pixel == 3)) return CDICOM_OK;
    if (gray || p == "RGB") {
        setError(error, capacity, "DICOM: " + p + " with " + std::to_string(info->samples_per_pixel)
                 + " samples per pixel is inconsistent");
        return CDICOM_CORRUPT;
    }
    setError(error, capacity, "DICOM: photometric interpretation '" + p
             + "' is not supported (MONOCHROME1, MONOCHROME2 and RGB are)");
    return CDICOM_UNSUPPORTED;
}

}  // namespace

extern "C" cdicom_image *cdicom_open(const uint8_t *bytes, size_t length, int64_t max_pixels, cdicom_info *info,
                                     cdicom_status *status, char *error, size_t error_capacity) {
    registerDecoders();
    std::memset(info, 0, sizeof *info);
    *status = CDICOM_CORRUPT;
    if (!dcmDataDict.isDictionaryLoaded()) {
        setError(error, error_capacity, "DICOM: DCMTK's data dictionary is not loaded (is libdcmtk installed?)");
        return nullptr;
    }
    auto image = new (std::nothrow) cdicom_image();
    if (image == nullptr) {
        setError(error, error_capacity, "DICOM: out of memory");
        return nullptr;
    }
    DcmInputBufferStream stream;
    stream.setBuffer(bytes, offile_off_t(length));
    stream.setEos();
    image->file.transferInit();
    OFCondition cond = image->file.read(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
    image->file.transferEnd();
    DcmDataset *data = image->file.getDataset();
    DcmXfer original(data->getOriginalXfer());
    std::snprintf(info->transfer_syntax, sizeof info->transfer_syntax, "%s", original.getXferID());
    std::snprintf(info->transfer_syntax_name, sizeof info->transfer_syntax_name, "%s", original.getXferName());
    if (cond.bad()) {
        // NOTE: DCMTK 3.6.7 refuses an element whose length runs past the end of the buffer
        // (before allocating its value) with EC_InvalidStream, and a buffer that ends inside a
        // tag or length with EC_StreamNotifyClient ("I/O suspension or premature end of stream").
        // Both are a file cut short (or bytes that are not DICOM at all).
        if (cond == EC_InvalidStream || cond == EC_StreamNotifyClient) {
            *status = CDICOM_TRUNCATED;
            setError(error, error_capacity, std::string("DICOM: the data ends inside an element (")
                     + cond.text() + "): the file is cut short, or is not DICOM");
        } else {
            *status = CDICOM_CORRUPT;
            setError(error, error_capacity, std::string("DICOM: ") + cond.text());
        }
        delete image;
        return nullptr;
    }
    *status = readHeader(data, max_pixels, info, error, error_capacity);
    if (*status != CDICOM_OK) {
        delete image;
        return nullptr;
    }
    if (original.isEncapsulated()) {
        cond = data->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
        if (cond.bad() || !data->canWriteXfer(EXS_LittleEndianExplicit)) {
            *status = CDICOM_UNSUPPORTED;
            setError(error, error_capacity, std::string("DICOM: cannot decode transfer syntax ") + info->transfer_syntax
                     + " (" + info->transfer_syntax_name + "): " + (cond.bad() ? cond.text() : "no decoder")
                     + "; supported: uncompressed, deflated, RLE, JPEG (baseline, extended, lossless), JPEG-LS");
            delete image;
            return nullptr;
        }
        // The decoder may have changed the photometric interpretation or planar configuration.
        copyString(data, DCM_PhotometricInterpretation, info->photometric, sizeof info->photometric);
        info->planar_configuration = getUint16(data, DCM_PlanarConfiguration, 0);
    }
    *status = checkPhotometric(info, error, error_capacity);
    if (*status != CDICOM_OK) {
        delete image;
        return nullptr;
    }
    image->info = *info;
    return image;
}

extern "C" cdicom_status cdicom_read_frame(cdicom_image *image, float *out, size_t count, char *error,
                                           size_t error_capacity) {
    const cdicom_info &info = image->info;
    const size_t samples = size_t(info.rows) * size_t(info.columns) * size_t(info.samples_per_pixel);
    if (count != samples) {
        setError(error, error_capacity, "DICOM: caller's buffer holds " + std::to_string(count) + " values, the image "
                 + std::to_string(samples));
        return CDICOM_CORRUPT;
    }
    DcmDataset *data = image->file.getDataset();
    DcmElement *element = nullptr;
    if (data->findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) {
        setError(error, error_capacity, "DICOM: no Pixel Data element (7FE0,0010)");
        return CDICOM_NO_PIXEL_DATA;
    }
    const size_t bytesPerSample = size_t(info.bits_allocated / 8);
    const size_t available = size_t(element->getLength()) / bytesPerSample;
    if (available < samples) {
        setError(error, error_capacity, "DICOM: Pixel Data holds " + std::to_string(element->getLength())
                 + " bytes, the header needs " + std::to_string(samples * bytesPerSample));
        return CDICOM_TRUNCATED;
    }
    // Stored value: bits [high_bit - bits_stored + 1, high_bit], sign-extended when signed;
    // modality value = stored x slope + intercept (PS3.3 C.7.6.3.1.4, C.11.1.1.2).
    const int shift = info.high_bit + 1 - info.bits_stored;
    const uint32_t mask = info.bits_stored >= 32 ? 0xFFFFFFFFu : (1u << info.bits_stored) - 1u;
    const uint32_t signBit = 1u << (info.bits_stored - 1);
    const bool isSigned = info.pixel_representation == 1;
    const bool gray = info.samples_per_pixel == 1;
    const double slope = gray ? info.rescale_slope : 1.0, intercept = gray ? info.rescale_intercept : 0.0;
    const size_t area = size_t(info.rows) * size_t(info.columns), spp = size_t(info.samples_per_pixel);
    auto convert = [&](uint32_t raw) -> float {
        uint32_t v = (raw >> shift) & mask;
        int64_t s = (isSigned && (v & signBit)) ? int64_t(v) - int64_t(mask) - 1 : int64_t(v);
        return float(double(s) * slope + intercept);
    };
    // Planar colour (RR..GG..BB..) is reordered to interleaved HWC.
    auto target = [&](size_t i) -> size_t {
        if (spp == 1 || info.planar_configuration == 0) return i;
        return (i % area) * spp + i / area;
    };
    OFCondition cond;
    if (bytesPerSample == 1) {
        Uint8 *values = nullptr;
        cond = element->getUint8Array(values);
        if (cond.good() && values != nullptr)
            for (size_t i = 0; i < samples; i++) out[target(i)] = convert(values[i]);
    } else {
        Uint16 *values = nullptr;
        cond = element->getUint16Array(values);
        if (cond.good() && values != nullptr)
            for (size_t i = 0; i < samples; i++) out[target(i)] = convert(values[i]);
    }
    if (cond.bad()) {
        setError(error, error_capacity, std::string("DICOM: cannot read Pixel Data: ") + cond.text());
        return CDICOM_CORRUPT;
    }
    return CDICOM_OK;
}

extern "C" void cdicom_close(cdicom_image *image) { delete image; }

// MARK: - Test files

extern "C" int cdicom_write_test_file(const char *path, const cdicom_write_spec *spec, const int32_t *values,
                                      size_t count, char *error, size_t error_capacity) {
    registerEncoders();
    const size_t samples = size_t(spec->rows) * size_t(spec->columns) * size_t(spec->samples_per_pixel)
                           * size_t(spec->frames < 1 ? 1 : spec->frames);
    if (count != samples || (spec->bits_allocated != 8 && spec->bits_allocated != 16)) {
        setError(error, error_capacity, "test writer: " + std::to_string(count) + " values for "
                 + std::to_string(samples) + " samples, or Bits Allocated not 8/16");
        return -1;
    }
    DcmFileFormat file;
    DcmDataset *data = file.getDataset();
    char uid[100];
    data->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    data->putAndInsertString(DCM_SOPInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
    data->putAndInsertString(DCM_StudyInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_STUDY_UID_ROOT));
    data->putAndInsertString(DCM_SeriesInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_SERIES_UID_ROOT));
    if (spec->patient_name) data->putAndInsertString(DCM_PatientName, spec->patient_name);
    if (spec->patient_id) data->putAndInsertString(DCM_PatientID, spec->patient_id);
    if (spec->birth_date) data->putAndInsertString(DCM_PatientBirthDate, spec->birth_date);
    if (spec->study_date) data->putAndInsertString(DCM_StudyDate, spec->study_date);
    if (spec->modality) data->putAndInsertString(DCM_Modality, spec->modality);
    data->putAndInsertUint16(DCM_SamplesPerPixel, Uint16(spec->samples_per_pixel));
    if (spec->photometric) data->putAndInsertString(DCM_PhotometricInterpretation, spec->photometric);
    if (spec->samples_per_pixel > 1)
        data->putAndInsertUint16(DCM_PlanarConfiguration, Uint16(spec->planar_configuration));
    if (spec->frames > 1) data->putAndInsertString(DCM_NumberOfFrames, std::to_string(spec->frames).c_str());
    data->putAndInsertUint16(DCM_Rows, Uint16(spec->rows));
    data->putAndInsertUint16(DCM_Columns, Uint16(spec->columns));
    data->putAndInsertUint16(DCM_BitsAllocated, Uint16(spec->bits_allocated));
    data->putAndInsertUint16(DCM_BitsStored, Uint16(spec->bits_stored));
    data->putAndInsertUint16(DCM_HighBit, Uint16(spec->bits_stored - 1));
    data->putAndInsertUint16(DCM_PixelRepresentation, Uint16(spec->pixel_representation));
    char number[64];
    if (spec->has_rescale) {
        std::snprintf(number, sizeof number, "%.6g", spec->rescale_slope);
        data->putAndInsertString(DCM_RescaleSlope, number);
        std::snprintf(number, sizeof number, "%.6g", spec->rescale_intercept);
        data->putAndInsertString(DCM_RescaleIntercept, number);
    }
    if (spec->has_window) {
        std::snprintf(number, sizeof number, "%.6g", spec->window_center);
        data->putAndInsertString(DCM_WindowCenter, number);
        std::snprintf(number, sizeof number, "%.6g", spec->window_width);
        data->putAndInsertString(DCM_WindowWidth, number);
    }
    const uint32_t mask = spec->bits_stored >= 32 ? 0xFFFFFFFFu : (1u << spec->bits_stored) - 1u;
    OFCondition cond;
    if (!spec->omit_pixel_data) {
        if (spec->bits_allocated == 8) {
            OFVector<Uint8> buffer(samples);
            for (size_t i = 0; i < samples; i++) buffer[i] = Uint8(uint32_t(values[i]) & mask);
            cond = data->putAndInsertUint8Array(DCM_PixelData, buffer.data(), OFstatic_cast(unsigned long, samples));
        } else {
            OFVector<Uint16> buffer(samples);
            for (size_t i = 0; i < samples; i++) buffer[i] = Uint16(uint32_t(values[i]) & mask);
            cond = data->putAndInsertUint16Array(DCM_PixelData, buffer.data(), OFstatic_cast(unsigned long, samples));
        }
    }
    E_TransferSyntax xfer = EXS_LittleEndianExplicit;
    if (cond.good() && !spec->omit_pixel_data) {
        switch (spec->syntax) {
        case CDICOM_WRITE_EXPLICIT_LE: break;
        case CDICOM_WRITE_IMPLICIT_LE: xfer = EXS_LittleEndianImplicit; break;
        case CDICOM_WRITE_DEFLATED_LE: xfer = EXS_DeflatedLittleEndianExplicit; break;
        case CDICOM_WRITE_EXPLICIT_BE: xfer = EXS_BigEndianExplicit; break;
        case CDICOM_WRITE_RLE:
            xfer = EXS_RLELossless;
            cond = data->chooseRepresentation(xfer, nullptr);
            break;
        case CDICOM_WRITE_JPEG_LOSSLESS_SV1: {
            xfer = EXS_JPEGProcess14SV1;
            DJ_RPLossless parameters(1, 0);
            cond = data->chooseRepresentation(xfer, &parameters);
            break;
        }
        case CDICOM_WRITE_JPEG_LS_LOSSLESS: {
            xfer = EXS_JPEGLSLossless;
            DJLSRepresentationParameter parameters(0, OFTrue);
            cond = data->chooseRepresentation(xfer, &parameters);
            break;
        }
        }
        if (cond.good() && !data->canWriteXfer(xfer)) cond = EC_CannotChangeRepresentation;
    }
    if (cond.good()) cond = file.saveFile(path, xfer);
    if (cond.bad()) {
        setError(error, error_capacity, std::string("test writer: ") + cond.text());
        return -1;
    }
    return 0;
}

extern "C" int64_t cdicom_inflated_length(const uint8_t *bytes, size_t length, int64_t limit) {
    z_stream stream;
    std::memset(&stream, 0, sizeof stream);
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) return -1;
    stream.next_in = const_cast<Bytef *>(bytes);
    stream.avail_in = uInt(std::min<size_t>(length, UINT32_MAX));
    size_t left = length - stream.avail_in;
    unsigned char buffer[1 << 16];
    int64_t total = 0;
    for (;;) {
        if (stream.avail_in == 0 && left > 0) {
            stream.avail_in = uInt(std::min<size_t>(left, UINT32_MAX));
            left -= stream.avail_in;
        }
        stream.next_out = buffer;
        stream.avail_out = sizeof buffer;
        int result = inflate(&stream, Z_NO_FLUSH);
        total += int64_t(sizeof buffer - stream.avail_out);
        if (total > limit) { total = limit + 1; break; }
        if (result == Z_STREAM_END) break;
        // Z_BUF_ERROR: no progress is possible, the data ends (a truncated stream; DCMTK says so).
        if (result == Z_BUF_ERROR && stream.avail_in == 0 && left == 0) break;
        if (result != Z_OK) { total = -1; break; }
    }
    inflateEnd(&stream);
    return total;
}
