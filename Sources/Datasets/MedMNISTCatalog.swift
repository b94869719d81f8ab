/// One 2D MedMNIST dataset: class names and the published files (Zenodo record 10519652).
///
/// Class names are identifiers derived from MedMNIST's `INFO[...]["label"]` table
/// (medmnist/info.py, v3); for DermaMNIST and BreastMNIST they match the folder names of the
/// class-folder exports in `shared/data`, so an npz and a folder tree of the same data agree.
public struct MedMNISTInfo: Sendable {
    /// File-name prefix and dataset flag, e.g. `pneumoniamnist`.
    public var name: String
    /// Class names by label index.
    public var classNames: [String]
    /// Published MD5 by image size (28, 64, 128, 224).
    public var md5: [Int: String]

    /// The file name for a size: `pneumoniamnist.npz`, `pneumoniamnist_64.npz`, ...
    public func fileName(size: Int) -> String { size == 28 ? "\(name).npz" : "\(name)_\(size).npz" }

    /// The official download URL for a size.
    public func url(size: Int) -> String {
        "https://zenodo.org/records/10519652/files/\(fileName(size: size))?download=1"
    }

    /// Looks up a dataset by name (`pneumoniamnist`) or by a file name that starts with it
    /// (`pneumoniamnist_64.npz`, `pneumoniamnist-trainval.npz`).
    public static func lookup(_ nameOrFile: String) -> MedMNISTInfo? {
        let base = nameOrFile.split(separator: "/").last.map(String.init)?.lowercased() ?? ""
        // Longest match first, so `organamnist` never matches a shorter flag by accident.
        return catalog.sorted { $0.name.count > $1.name.count }.first { base.hasPrefix($0.name) }
    }

    /// The 2D single-label datasets (ChestMNIST is multi-label and left out).
    public static let catalog: [MedMNISTInfo] = [
        MedMNISTInfo(
            name: "pathmnist",
            classNames: [
                "adipose", "background", "debris", "lymphocytes", "mucus", "smooth_muscle",
                "normal_colon_mucosa", "cancer_associated_stroma",
                "colorectal_adenocarcinoma_epithelium",
            ],
            md5: [
                28: "a8b06965200029087d5bd730944a56c1", 64: "55aa9c1e0525abe5a6b9d8343a507616",
                128: "ac42d08fb904d92c244187169d1fd1d9", 224: "2c51a510bcdc9cf8ddb2af93af1eadec",
            ]),
        MedMNISTInfo(
            name: "dermamnist",
            classNames: [
                "actinic_keratosis", "basal_cell_carcinoma", "benign_keratosis", "dermatofibroma",
                "melanoma", "melanocytic_nevus", "vascular_lesion",
            ],
            md5: [
                28: "0744692d530f8e62ec473284d019b0c7", 64: "b70a2f5635c6199aeaa28c31d7202e1f",
                128: "2defd784463fa5243564e855ed717de1", 224: "8974907d8e169bef5f5b96bc506ae45d",
            ]),
        MedMNISTInfo(
            name: "octmnist",
            classNames: ["choroidal_neovascularization", "diabetic_macular_edema", "drusen", "normal"],
            md5: [
                28: "c68d92d5b585d8d81f7112f81e2d0842", 64: "e229e9440236b774d9f0dfef9d07bdaf",
                128: "0a97e76651ace45c5d943ee3f65b63ae", 224: "abc493b6d529d5de7569faaef2773ba3",
            ]),
        MedMNISTInfo(
            name: "pneumoniamnist",
            classNames: ["normal", "pneumonia"],
            md5: [
                28: "28209eda62fecd6e6a2d98b1501bb15f", 64: "8f4eceb4ccffa70c672198ea285246c6",
                128: "05b46931834c231683c68f40c47b2971", 224: "d6a3c71de1b945ea11211b03746c1fe1",
            ]),
        MedMNISTInfo(
            name: "retinamnist",
            classNames: ["0", "1", "2", "3", "4"],  // diabetic-retinopathy grades
            md5: [
                28: "bd4c0672f1bba3e3a89f0e4e876791e4", 64: "afda852cc34dcda56f86ad2b2457dbcc",
                128: "e48e916a24454daf90583d4e6efb1a18", 224: "eae7e3b6f3fcbda4ae613ebdcbe35348",
            ]),
        MedMNISTInfo(
            name: "breastmnist",
            classNames: ["malignant", "normal_or_benign"],
            md5: [
                28: "750601b1f35ba3300ea97c75c52ff8f6", 64: "742edef2a1fd1524b2efff4bd7ba9364",
                128: "363e4b3f8d712e9b5de15470a2aaadf1", 224: "b56378a6eefa9fed602bb16d192d4c8b",
            ]),
        MedMNISTInfo(
            name: "bloodmnist",
            classNames: [
                "basophil", "eosinophil", "erythroblast", "immature_granulocytes", "lymphocyte",
                "monocyte", "neutrophil", "platelet",
            ],
            md5: [
                28: "7053d0359d879ad8a5505303e11de1dc", 64: "2b94928a2ae4916078ca51e05b6b800b",
                128: "adace1e0ed228fccda1f39692059dd4c", 224: "b718ff6835fcbdb22ba9eacccd7b2601",
            ]),
        MedMNISTInfo(
            name: "tissuemnist",
            classNames: [
                "collecting_duct_connecting_tubule", "distal_convoluted_tubule",
                "glomerular_endothelial_cells", "interstitial_endothelial_cells", "leukocytes",
                "podocytes", "proximal_tubule_segments", "thick_ascending_limb",
            ],
            md5: [
                28: "ebe78ee8b05294063de985d821c1c34b", 64: "123ece2eba09d0aa5d698fda57103344",
                128: "61b955355d7425a89687b06cca3ce0c2", 224: "b077128c4a949f0a4eb01517f9037b9c",
            ]),
        MedMNISTInfo(
            name: "organamnist", classNames: organs,
            md5: [
                28: "68e3f8846a6bd62f0c9bf841c0d9eacc", 64: "2dcccc29b88e6da5a01161ef20cda288",
                128: "eeae80d0a227a8d099027e1b3cfd3b60", 224: "50747347e05c87dd3aaf92c49f9f3170",
            ]),
        MedMNISTInfo(
            name: "organcmnist", classNames: organs,
            md5: [
                28: "b9ceb9546e10131b32923c5bbeaea2b1", 64: "3ce34a8724ea6f548e6db4744d03b6a9",
                128: "773c1f009daa3fe5d9a2a201b2a7ed94", 224: "050f5e875dc056f6768abf94ec9995d1",
            ]),
        MedMNISTInfo(
            name: "organsmnist", classNames: organs,
            md5: [
                28: "9ab87b696fb54e2a387ebe992d6ed5f1", 64: "53a6d115339d874c25e309a994ff46d3",
                128: "ded0c5fa01a95dc4978b956f613e9b8e", 224: "b354719e553fbbb2513d5533f52a4cb1",
            ]),
    ]

    private static let organs = [
        "bladder", "femur_left", "femur_right", "heart", "kidney_left", "kidney_right", "liver",
        "lung_left", "lung_right", "pancreas", "spleen",
    ]
}
