import Datasets
import TestSupport
import Testing

@Suite("Real datasets in shared/data")
struct RealDataTests {
    @Test func pneumoniaNPZHasReadmeCounts() throws {
        let data = try loadDataset(at: sharedData("pneumoniamnist/pneumoniamnist-trainval.npz"))
        #expect(data.format == .npz)
        #expect(data.images.classNames == ["normal", "pneumonia"])
        #expect(data.images.classCounts == [1349, 3883])
        #expect(data.images.channels == 1 && data.images.height == 28 && data.images.width == 28)
        let splits = try #require(data.presetSplits)
        #expect(splits.filter { $0 == .train }.count == 4708)
        #expect(splits.filter { $0 == .val }.count == 524)
        #expect(data.images.pixels.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func breastPNGFoldersHaveReadmeCounts() throws {
        let data = try loadDataset(at: sharedData("breastmnist-png"))
        #expect(data.format == .classFolders)
        #expect(data.images.classNames == ["malignant", "normal_or_benign"])
        #expect(data.images.classCounts == [168, 456])
        #expect(data.skipped.isEmpty)
        #expect(data.images.channels == 1)
    }

    @Test func dermaJPEGFoldersHaveReadmeCounts() throws {
        let data = try loadDataset(at: sharedData("dermamnist-jpeg"))
        let counts = Dictionary(uniqueKeysWithValues: zip(data.images.classNames, data.images.classCounts))
        #expect(
            counts == [
                "melanocytic_nevus": 5364, "melanoma": 890, "benign_keratosis": 879, "basal_cell_carcinoma": 411,
                "actinic_keratosis": 261, "vascular_lesion": 113, "dermatofibroma": 92,
            ])
        #expect(data.images.channels == 3)
        #expect(data.skipped.isEmpty)
        #expect(Set(data.originalShapes) == [ImageShape(width: 28, height: 28, channels: 3)])
    }
}
