//! Deterministic demo data: a roster, household files and cases with a year of history,
//! generated from a seed through the same typed API the app uses. Two sizes: `small` (one
//! community) and `street` (Fenghuang Street scale from the source report: 86 grids, 471
//! buildings, about 25,000 households, 9,000+ help requests, 1,200 disputes, 660 micro-wishes).
//!
//! The "1" and "3" of the method at the report's proportions: a grid party branch per grid
//! (86), a building party group per building (471), party members who reported to the
//! community at [`PARTY_MEMBERS_PER_BUILDING`] a building, and [`VOLUNTEERS_PER_GRID`]
//! volunteers a grid (156 volunteer teams of about ten over 86 grids). These come from their
//! own random stream after the households and cases, so adding them changed none of those.
//!
//! Activity and service records (志愿服务/党员活动) at [`ACTIVITIES_PER_GRID`] a grid over the
//! year, each by one to five of the grid's party members or volunteers, about a third for a
//! help request or micro-wish of the grid; from a stream of their own.
//!
//! Help requests filed by residents through the grid e-link (社区网格e通) at [`ELINK_SHARE`]:
//! reported by the grid's e-link account (one per grid, the row the server would create), the
//! case text in the e-link's shape, and the resident's name, phone and reference number in
//! [`DemoData::elink_requests`] for the server's status page. A stream of its own too, and the
//! accounts' ids come after every other row, so no other figure or id moved.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;

use crate::activity::{ActivityFile, ActivityKind, PersonRef};
use crate::case::{Action, CaseFile, CaseKind, Claimant, ClaimantId, OutletRef};
use crate::codes::*;
use crate::household::{HouseholdFile, NeedEntry, Resident, TagEntry, Visit};
use crate::ids::*;
use crate::org::*;
use crate::party::{PartyBranch, PartyGroup, PartyMember, Volunteer};
use crate::policy::PolicyConfig;
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis, local_date, start_of_local_day};

/// How much to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoSize {
    /// One community, 3 grids, ~20 buildings, ~300 households.
    Small,
    /// 86 grids, 471 buildings, ~25,000 households, a year of visits and cases.
    Street,
}

impl std::str::FromStr for DemoSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "small" => Ok(DemoSize::Small),
            "street" => Ok(DemoSize::Street),
            other => Err(format!("unknown demo size '{other}': expected small or street")),
        }
    }
}

/// A generated dataset.
#[derive(Clone, Debug)]
pub struct DemoData {
    pub roster: Roster,
    pub households: Vec<HouseholdFile>,
    pub cases: Vec<CaseFile>,
    /// Activity and service records (志愿服务/党员活动).
    pub activities: Vec<ActivityFile>,
    /// The help requests residents filed through the grid e-link, in case order.
    pub elink_requests: Vec<DemoElinkRequest>,
    /// The instant the history ends at.
    pub now: Millis,
}

/// A help request a resident filed through the grid e-link (社区网格e通): what the server
/// keeps of it beside the case (`elink_requests`), so the status page answers the resident's
/// reference number and phone with the case's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoElinkRequest {
    /// The help case, reported by its grid's e-link account.
    pub case: CaseId,
    pub building: BuildingId,
    /// The reference number in canonical form (8 characters of
    /// [`crate::elink::REFERENCE_ALPHABET`], shown as `ABCD-EFGH`).
    pub reference: String,
    /// The resident who filed it, as typed on the form (also in the case's description).
    pub name: String,
    /// A mobile number, digits only, as the server stores it.
    pub phone: String,
    /// When it was filed: the case's `reported_at`.
    pub filed_at: Millis,
}

impl DemoData {
    /// The demo admin who "imported" everything.
    pub fn admin(&self) -> &Staff {
        self.roster.staff.iter().find(|s| s.role == Role::Admin).expect("demo roster has an admin")
    }

    /// Staff of a role, in roster order.
    pub fn staff_with_role(&self, role: Role) -> impl Iterator<Item = &Staff> {
        self.roster.staff.iter().filter(move |s| s.role == role)
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁", "潘", "蒋",
    "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪",
    "范", "金", "石", "廖", "贾", "夏", "付", "方", "邹", "熊", "秦", "江", "尹", "雷", "龙", "陶", "贺", "顾", "毛",
    "龚", "万", "严", "戴",
];
const MALE_GIVEN: &[&str] = &[
    "伟", "强", "军", "勇", "杰", "涛", "明", "超", "刚", "平", "建国", "建华", "国强", "志明", "志强", "海波", "德胜",
    "春生", "卫东", "红兵", "文斌", "俊杰", "浩然", "子轩", "宇航", "家豪", "立新", "长江", "永福", "金山",
];
const FEMALE_GIVEN: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀英", "桂兰", "玉兰", "秀珍", "凤英", "淑华", "红梅", "丽华",
    "晓燕", "春梅", "美玲", "雪梅", "欣怡", "梓涵", "诗琪", "雨桐", "婷婷", "佳怡", "慧敏", "金凤", "翠花", "小红",
];
const COMMUNITIES: &[&str] = &[
    "凤凰台社区",
    "滨湖社区",
    "文星社区",
    "洋澜社区",
    "南浦社区",
    "寿山社区",
    "古楼社区",
    "吴都社区",
    "明塘社区",
    "澜湖社区",
];
const COMPOUNDS: &[&str] = &[
    "滨湖小区",
    "文星花园",
    "洋澜湖畔",
    "南浦新村",
    "寿山苑",
    "古楼街小区",
    "凤凰台小区",
    "吴都花园",
    "明珠花园",
    "怡景苑",
    "金色港湾",
    "澜湖印象",
    "凤凰新城",
    "江南春城",
    "翠湖苑",
    "碧桂园",
    "东方家园",
    "和谐家园",
    "幸福里",
    "书香门第",
    "锦绣江南",
    "阳光小区",
    "建设新村",
    "粮食局宿舍",
    "电力小区",
];
/// Party members living in each building who reported to the community (在职党员进社区).
pub const PARTY_MEMBERS_PER_BUILDING: usize = 4;
/// Volunteers per grid: the report's 156 volunteer teams of about ten people over 86 grids.
pub const VOLUNTEERS_PER_GRID: usize = 18;
/// Activity and service records per grid over the demo year (two a month).
pub const ACTIVITIES_PER_GRID: usize = 24;
/// Share of help requests residents filed through the grid e-link (社区网格e通). The report
/// credits the e-link with the street's 9,000+ help requests ("共办理群众求助9000余件"), and
/// the street demo's 9,100 help requests are that figure: so 99% of them (9,009, the "9,000+")
/// came through the e-link, and the odd remaining one a resident brought to the grid worker in
/// person (the 亮身份 cards send residents to the worker too), reported by the worker.
pub const ELINK_SHARE: f64 = 0.99;
/// What residents type on the e-link form, two ways per service category.
fn elink_text(category: ServiceCategory) -> [&'static str; 2] {
    match category {
        ServiceCategory::Housekeeping => {
            ["家里老人行动不便，想请个钟点工每周上门打扫一次卫生。", "刚做完手术在家休养，想找家政阿姨帮忙做几天饭。"]
        }
        ServiceCategory::ApplianceRepair => {
            ["家里空调不制冷了，老人怕热，麻烦帮忙联系师傅上门维修。", "洗衣机不脱水，一直报错，请帮忙找个维修师傅。"]
        }
        ServiceCategory::Medical => {
            ["老伴行动不便，想请社区医生上门量血压。", "家里老人糖尿病，想问问能不能签约家庭医生定期随访。"]
        }
        ServiceCategory::ElderlyCare => {
            ["母亲八十多岁独居，想申请老年助餐上门。", "父亲腿脚不好，想了解居家养老服务怎么申请。"]
        }
        ServiceCategory::Utilities => [
            "卫生间水管接头漏水，楼下邻居家天花板在滴水，请尽快安排师傅。",
            "家里突然停电了，总闸推不上去，请帮忙看看。",
        ],
        ServiceCategory::Legal => {
            ["父亲去世后房子过户，想咨询继承手续要准备什么材料。", "装修公司拖欠工期不退定金，想咨询怎么维权。"]
        }
        ServiceCategory::Locksmith => {
            ["钥匙锁在屋里了，孩子一个人在家，请帮忙联系开锁。", "防盗门锁芯坏了打不开，请帮忙找正规开锁师傅。"]
        }
        ServiceCategory::Errands => {
            ["想请网格员帮忙代办医保报销，老人跑不动。", "腿脚不方便，想请人代办养老金资格认证。"]
        }
    }
}
/// Party members' activities (党员活动) not tied to a case.
const PARTY_ACTIVITIES: &[&str] = &[
    "主题党日·清洁家园",
    "走访慰问空巢老人",
    "政策宣讲进楼栋",
    "文明创建志愿服务",
    "关爱留守儿童课业辅导",
    "帮扶困难家庭",
];
/// Volunteer services (志愿服务) not tied to a case.
const VOLUNTEER_SERVICES: &[&str] =
    &["义务理发", "量血压义诊", "家电义务维修", "楼道卫生清理", "陪同老人就医", "法律咨询进社区", "文艺演出"];
/// What volunteers offer, as residents ask for it.
const SKILLS: &[&str] = &[
    "助老陪护",
    "助残",
    "义务理发",
    "家电维修",
    "量血压",
    "法律咨询",
    "心理疏导",
    "课业辅导",
    "文艺演出",
    "环境清洁",
    "政策宣传",
    "矛盾调解",
    "代购代办",
    "水电维修",
];
const ROADS: &[&str] =
    &["凤凰路", "滨湖南路", "文星路", "洋澜路", "南浦路", "寿山大道", "古楼街", "吴都大道", "明塘路"];

/// Generates a dataset. Same `size`, `seed` and `now` give the same data.
pub fn generate(size: DemoSize, seed: u64, now: Millis) -> DemoData {
    Generator::new(seed, now).run(size)
}

struct Generator {
    rng: ChaCha8Rng,
    next_id: u128,
    now: Millis,
    seed: u64,
}

impl Generator {
    fn new(seed: u64, now: Millis) -> Self {
        Generator { rng: ChaCha8Rng::seed_from_u64(seed), next_id: 0, now, seed }
    }

    /// Deterministic ids: the seed in the high bits, a counter in the low bits, shaped as a
    /// UUIDv8-style value so demo ids never collide with device-generated UUIDv7 ones.
    fn id(&mut self) -> u128 {
        self.next_id += 1;
        (u128::from(self.seed) << 64) | (0x8000_u128 << 48) | self.next_id
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    fn person_name(&mut self, sex: Sex) -> String {
        let surname = self.pick(SURNAMES);
        let given = match sex {
            Sex::Male => self.pick(MALE_GIVEN),
            Sex::Female => self.pick(FEMALE_GIVEN),
        };
        format!("{surname}{given}")
    }

    fn phone(&mut self) -> String {
        let prefix =
            ["138", "139", "135", "136", "150", "151", "187", "177", "133", "189"][self.rng.random_range(0..10)];
        format!("{prefix}{:08}", self.rng.random_range(0..100_000_000u32))
    }

    /// A plausible resident ID number for Ezhou (区划 4207xx) with a valid check digit.
    fn id_number(&mut self, birth_year: u16, sex: Sex) -> String {
        let district = ["420702", "420703", "420704"][self.rng.random_range(0..3)];
        let month = self.rng.random_range(1..=12);
        let day = self.rng.random_range(1..=28);
        let order = self.rng.random_range(0..50u32) * 2 + u32::from(sex == Sex::Male) + 1;
        let body = format!("{district}{birth_year:04}{month:02}{day:02}{:03}", order % 1000);
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap_or(0) * w).sum();
        let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
        format!("{body}{check}")
    }

    fn run(mut self, size: DemoSize) -> DemoData {
        let (communities, grids_per_community, buildings_total, households_total) = match size {
            DemoSize::Small => (1, vec![3], 20, 300),
            DemoSize::Street => (10, vec![9, 9, 9, 9, 9, 9, 8, 8, 8, 8], 471, 25_000),
        };
        let mut roster = Roster::default();
        let street = Street { id: StreetId::from_u128(self.id()), name: "凤凰街道".to_string() };
        roster.staff.push(Staff {
            id: UserId::from_u128(self.id()),
            name: "系统管理员".to_string(),
            role: Role::Admin,
            phone: "0711-3200000".to_string(),
            scopes: vec![Scope::Street(street.id)],
            pledge: String::new(),
        });
        roster.staff.push(Staff {
            id: UserId::from_u128(self.id()),
            name: "周建平".to_string(),
            role: Role::Supervisor,
            phone: "0711-3201000".to_string(),
            scopes: vec![Scope::Street(street.id)],
            pledge: "统筹全街道网格服务，督办逾期事项。".to_string(),
        });
        let grid_count: usize = grids_per_community.iter().sum();
        let buildings_per_grid = split_evenly(buildings_total, grid_count);
        let mut grid_index = 0;
        for c in 0..communities {
            let community = Community {
                id: CommunityId::from_u128(self.id()),
                street: street.id,
                name: COMMUNITIES[c % COMMUNITIES.len()].to_string(),
            };
            let sup_sex = if c % 2 == 0 { Sex::Female } else { Sex::Male };
            let sup_name = self.person_name(sup_sex);
            let sup_phone = self.phone();
            roster.staff.push(Staff {
                id: UserId::from_u128(self.id()),
                name: sup_name,
                role: Role::Supervisor,
                phone: sup_phone,
                scopes: vec![Scope::Community(community.id)],
                pledge: "对社区网格工作负总责，群众诉求限时办结。".to_string(),
            });
            for g in 0..grids_per_community[c] {
                let grid = Grid {
                    id: GridId::from_u128(self.id()),
                    community: community.id,
                    name: format!("{}第{}网格", community.name, g + 1),
                };
                let sex = if self.rng.random_bool(0.6) { Sex::Female } else { Sex::Male };
                let worker_name = self.person_name(sex);
                let worker_phone = self.phone();
                roster.staff.push(Staff {
                    id: UserId::from_u128(self.id()),
                    name: worker_name,
                    role: Role::GridWorker,
                    phone: worker_phone,
                    scopes: vec![Scope::Grid(grid.id)],
                    pledge: "有事找网格员，接诉即办，件件有回音。".to_string(),
                });
                let compound = COMPOUNDS[grid_index % COMPOUNDS.len()];
                for b in 0..buildings_per_grid[grid_index] {
                    let building = Building {
                        id: BuildingId::from_u128(self.id()),
                        grid: grid.id,
                        name: format!("{compound}{}栋", b + 1 + (grid_index / COMPOUNDS.len()) * 20),
                        units: self.rng.random_range(1..=3),
                        floors: self.rng.random_range(5..=18),
                        rooms_per_floor: 2,
                    };
                    let leader_sex = if self.rng.random_bool(0.5) { Sex::Female } else { Sex::Male };
                    let leader_name = self.person_name(leader_sex);
                    let leader_phone = self.phone();
                    roster.staff.push(Staff {
                        id: UserId::from_u128(self.id()),
                        name: leader_name,
                        role: Role::BuildingLeader,
                        phone: leader_phone,
                        scopes: vec![Scope::Building(building.id)],
                        pledge: "卫生监督、政策宣传、信息上报、邻里调解。".to_string(),
                    });
                    roster.buildings.push(building);
                }
                roster.grids.push(grid);
                grid_index += 1;
            }
            for category in ServiceCategory::ALL {
                for n in 0..2 {
                    let road = self.pick(ROADS);
                    let number = self.rng.random_range(1..300);
                    let phone = self.phone();
                    roster.outlets.push(Outlet {
                        id: OutletId::from_u128(self.id()),
                        community: community.id,
                        category: *category,
                        name: outlet_name(*category, &community.name, n),
                        phone,
                        address: format!("鄂州市鄂城区{road}{number}号"),
                        hours: if *category == ServiceCategory::Locksmith {
                            "24小时".into()
                        } else {
                            "08:00-18:00".into()
                        },
                    });
                }
            }
            roster.communities.push(community);
        }
        roster.streets.push(street);

        let households = self.households(&roster, households_total);
        let mut cases = self.cases(&roster, &households, size);
        self.party(&mut roster);
        self.wishes_and_referrals(&roster, &mut cases);
        let filed = self.elink_requests(&households, &mut cases);
        let activities = self.activities(&roster, &cases);
        let elink_requests = self.elink_accounts(&mut roster, &mut cases, filed);
        DemoData { roster, households, cases, activities, elink_requests, now: self.now }
    }

    /// Marks [`ELINK_SHARE`] of the help requests as filed by residents through the grid e-link:
    /// the title and description as the server writes them from the form (a resident of the
    /// household, their mobile, the room as typed), and a reference number. A random stream of
    /// its own, run after the referrals (which take the reporter for the worker) and before the
    /// activities (whose titles quote the case's). The reporter becomes the grid's e-link
    /// account in [`Generator::elink_accounts`]. Returns each marked case's index with its
    /// request.
    fn elink_requests(
        &mut self,
        households: &[HouseholdFile],
        cases: &mut [CaseFile],
    ) -> Vec<(usize, DemoElinkRequest)> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x1234_0004);
        let by_id: BTreeMap<HouseholdId, &HouseholdFile> = households.iter().map(|h| (h.id, h)).collect();
        let help: Vec<usize> = (0..cases.len()).filter(|&i| matches!(cases[i].kind, CaseKind::Help(_))).collect();
        let count = (help.len() as f64 * ELINK_SHARE).round() as usize;
        let mut chosen: Vec<usize> = rand::seq::index::sample(&mut rng, help.len(), count.min(help.len()))
            .into_iter()
            .map(|i| help[i])
            .collect();
        chosen.sort_unstable();
        let mut references = std::collections::BTreeSet::new();
        let mut out = Vec::with_capacity(chosen.len());
        for index in chosen {
            let case = &mut cases[index];
            let (CaseKind::Help(category), Some(building)) = (case.kind, case.placement.building) else { continue };
            let Some(household) = case.household.and_then(|h| by_id.get(&h)) else { continue };
            // Whoever in the household has a mobile files it; the household's phone otherwise.
            let adults: Vec<&crate::household::Resident> =
                household.residents.values().filter(|r| r.phone.starts_with('1')).collect();
            let (name, phone) = match adults.len() {
                0 => (household.head.clone(), household.phone.clone()),
                n => {
                    let r = adults[rng.random_range(0..n)];
                    (r.name.clone(), r.phone.clone())
                }
            };
            let room = if household.unit == "1" && rng.random_bool(0.5) {
                household.room.clone()
            } else {
                format!("{}单元{}", household.unit, household.room)
            };
            let text = elink_text(category)[rng.random_range(0..2)];
            case.title = crate::elink::case_title(category, &room);
            case.description = crate::elink::case_description(text, &name, &room, &phone);
            let reference = loop {
                let candidate = crate::elink::random_reference(&mut rng);
                if references.insert(candidate.clone()) {
                    break candidate;
                }
            };
            out.push((
                index,
                DemoElinkRequest { case: case.id, building, reference, name, phone, filed_at: case.reported_at },
            ));
        }
        out
    }

    /// One e-link account per grid (exactly the row the server's e-link would create, so it
    /// finds and uses this one), its id after every other row, and the filed requests'
    /// reporter set to their grid's account.
    fn elink_accounts(
        &mut self,
        roster: &mut Roster,
        cases: &mut [CaseFile],
        filed: Vec<(usize, DemoElinkRequest)>,
    ) -> Vec<DemoElinkRequest> {
        let mut accounts = BTreeMap::new();
        for grid in roster.grids.iter().map(|g| g.id).collect::<Vec<_>>() {
            let account = crate::elink::elink_account(UserId::from_u128(self.id()), grid);
            accounts.insert(grid, (account.id, account.name.clone()));
            roster.staff.push(account);
        }
        filed
            .into_iter()
            .filter_map(|(index, request)| {
                let case = &mut cases[index];
                let (id, name) = accounts.get(&case.placement.grid)?;
                case.reporter = *id;
                case.reporter_name = name.clone();
                Some(request)
            })
            .collect()
    }

    /// Party branches, building party groups, party members and volunteers, from a random
    /// stream of their own.
    fn party(&mut self, roster: &mut Roster) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x1234_0001);
        let today = local_date(self.now);
        let first_report = NaiveDate::from_ymd_opt(2018, 3, 1).expect("a valid date");
        let report_days = (today - first_report).num_days().max(1);
        let name = |rng: &mut ChaCha8Rng| {
            let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
            let given = if rng.random_bool(0.5) { MALE_GIVEN } else { FEMALE_GIVEN };
            format!("{surname}{}", given[rng.random_range(0..given.len())])
        };
        let phone = |rng: &mut ChaCha8Rng| {
            let prefix =
                ["138", "139", "135", "136", "150", "151", "187", "177", "133", "189"][rng.random_range(0..10)];
            format!("{prefix}{:08}", rng.random_range(0..100_000_000u32))
        };
        let grids = roster.grids.clone();
        for grid in &grids {
            let branch = PartyBranch {
                id: PartyBranchId::from_u128(self.id()),
                grid: grid.id,
                name: format!("{}党支部", grid.name),
                phone: format!("0711-32{:05}", rng.random_range(0..100_000u32)),
            };
            for building in roster.buildings.iter().filter(|b| b.grid == grid.id) {
                roster.party_groups.push(PartyGroup {
                    id: PartyGroupId::from_u128(self.id()),
                    branch: branch.id,
                    building: building.id,
                    name: format!("{}党小组", building.name),
                });
                for _ in 0..PARTY_MEMBERS_PER_BUILDING {
                    let days = rng.random_range(0..=report_days);
                    roster.party_members.push(PartyMember {
                        id: PartyMemberId::from_u128(self.id()),
                        branch: branch.id,
                        building: Some(building.id),
                        name: name(&mut rng),
                        phone: phone(&mut rng),
                        reported_at: first_report + chrono::Duration::days(days),
                    });
                }
            }
            roster.party_branches.push(branch);
            for _ in 0..VOLUNTEERS_PER_GRID {
                let count = rng.random_range(1..=3);
                let mut skills: Vec<String> = Vec::new();
                while skills.len() < count {
                    let skill = SKILLS[rng.random_range(0..SKILLS.len())];
                    if !skills.iter().any(|s| s == skill) {
                        skills.push(skill.to_string());
                    }
                }
                roster.volunteers.push(Volunteer {
                    id: VolunteerId::from_u128(self.id()),
                    community: grid.community,
                    name: name(&mut rng),
                    phone: phone(&mut rng),
                    skills,
                });
            }
        }
    }

    /// Activity and service records of each grid over the year, from a random stream of their
    /// own; about a third done for one of the grid's help requests or micro-wishes.
    fn activities(&mut self, roster: &Roster, cases: &[CaseFile]) -> Vec<ActivityFile> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x1234_0003);
        let workers = workers_by_grid(roster);
        let today = local_date(self.now);
        let mut out = Vec::new();
        for grid in &roster.grids {
            let (Some(placement), Some(worker)) = (roster.placement_of_grid(grid.id), workers.get(&grid.id)) else {
                continue;
            };
            let branches: Vec<PartyBranchId> =
                roster.party_branches.iter().filter(|b| b.grid == grid.id).map(|b| b.id).collect();
            let members: Vec<(PersonRef, &str)> = roster
                .party_members
                .iter()
                .filter(|m| branches.contains(&m.branch))
                .map(|m| (PersonRef::PartyMember(m.id), m.name.as_str()))
                .collect();
            let volunteers: Vec<(PersonRef, &str)> = roster
                .volunteers
                .iter()
                .filter(|v| v.community == grid.community)
                .map(|v| (PersonRef::Volunteer(v.id), v.name.as_str()))
                .collect();
            let for_cases: Vec<&CaseFile> = cases
                .iter()
                .filter(|c| c.placement.grid == grid.id && matches!(c.kind, CaseKind::Help(_) | CaseKind::MicroWish))
                .collect();
            for _ in 0..ACTIVITIES_PER_GRID {
                let kind =
                    if rng.random_bool(0.5) { ActivityKind::PartyActivity } else { ActivityKind::VolunteerService };
                let (case, on, title) = if !for_cases.is_empty() && rng.random_bool(0.35) {
                    let case = for_cases[rng.random_range(0..for_cases.len())];
                    let on = (local_date(case.reported_at) + chrono::Duration::days(rng.random_range(0..4))).min(today);
                    let title = if case.kind == CaseKind::MicroWish {
                        format!("圆梦微心愿：{}", case.title)
                    } else {
                        format!("上门服务：{}", case.title)
                    };
                    (Some(case.id), on, title)
                } else {
                    let titles = match kind {
                        ActivityKind::PartyActivity => PARTY_ACTIVITIES,
                        ActivityKind::VolunteerService => VOLUNTEER_SERVICES,
                    };
                    let on = today - chrono::Duration::days(rng.random_range(0..365));
                    (None, on, titles[rng.random_range(0..titles.len())].to_string())
                };
                let title: String = title.chars().take(crate::activity::MAX_TITLE_CHARS).collect();
                let recorded_at = (start_of_local_day(on) + 18 * HOUR_MS).min(self.now);
                let mut record = ActivityFile::new(
                    ActivityId::from_u128(self.id()),
                    kind,
                    placement,
                    &title,
                    on,
                    case,
                    (worker.0, &worker.1),
                    recorded_at,
                );
                let pool = match kind {
                    ActivityKind::PartyActivity if !members.is_empty() => &members,
                    _ if !volunteers.is_empty() => &volunteers,
                    _ => &members,
                };
                for _ in 0..rng.random_range(1..=5usize.min(pool.len()).max(1)) {
                    if pool.is_empty() {
                        break;
                    }
                    let (person, name) = pool[rng.random_range(0..pool.len())];
                    record.add(person, name, [10, 15, 20, 20, 30, 40][rng.random_range(0..6)]);
                }
                if !record.participants.is_empty() {
                    out.push(record);
                }
            }
        }
        out
    }

    fn households(&mut self, roster: &Roster, total: usize) -> Vec<HouseholdFile> {
        let per_building = split_evenly(total, roster.buildings.len());
        let workers = workers_by_grid(roster);
        let admin = roster.staff[0].id;
        let mut out = Vec::with_capacity(total);
        for (building, count) in roster.buildings.iter().zip(per_building) {
            let placement = roster.placement_of_building(building.id).expect("building is on the roster");
            let worker = workers[&building.grid].clone();
            for n in 0..count {
                let unit = (n % usize::from(building.units)) + 1;
                let slot = n / usize::from(building.units);
                let floor = slot / 2 + 1;
                let room = format!("{}{:02}", floor, slot % 2 + 1);
                out.push(self.household(placement, building, unit, &room, &worker, admin));
            }
        }
        out
    }

    fn household(
        &mut self,
        placement: Placement,
        building: &Building,
        unit: usize,
        room: &str,
        worker: &(UserId, String),
        admin: UserId,
    ) -> HouseholdFile {
        let now = self.now;
        let year_ago = now - 365 * DAY_MS;
        let today_year = u16::try_from(chrono::Datelike::year(&local_date(now))).unwrap_or(2026);
        let roll: f64 = self.rng.random();
        let mut tags: Vec<MustVisitTag> = Vec::new();
        let elderly_head = roll < 0.10;
        if elderly_head {
            tags.push(MustVisitTag::EmptyNest);
        }
        if self.rng.random_bool(0.04) {
            tags.push(MustVisitTag::PoorFamily);
        }
        if self.rng.random_bool(0.02) {
            tags.push(MustVisitTag::ProblemFamily);
        }
        let new_arrival = self.rng.random_bool(0.03);
        if new_arrival {
            tags.push(MustVisitTag::NewArrival);
        }

        let head_sex = if self.rng.random_bool(0.5) { Sex::Male } else { Sex::Female };
        let head_name = self.person_name(head_sex);
        let head_birth = if elderly_head {
            today_year - self.rng.random_range(68..92)
        } else {
            today_year - self.rng.random_range(28..66)
        };
        let created_at = if new_arrival { now - self.rng.random_range(1..20) * DAY_MS } else { year_ago - DAY_MS };
        let mut file = HouseholdFile::new(
            HouseholdId::from_u128(self.id()),
            placement,
            &building.name,
            &unit.to_string(),
            room,
            &head_name,
            created_at,
        );
        file.phone = self.phone();
        let mut add_resident =
            |g: &mut Self, name: String, sex: Sex, birth: u16, relation: &str, flags: &[ResidentFlag]| {
                let id = ResidentId::from_u128(g.id());
                let id_number = g.id_number(birth, sex);
                let phone = if today_year - birth > 16 { g.phone() } else { String::new() };
                file.residents.insert(
                    id,
                    Resident {
                        id,
                        name,
                        sex,
                        birth_year: birth,
                        relation: relation.to_string(),
                        phone,
                        id_number,
                        flags: flags.iter().map(|f| (*f, true)).collect(),
                    },
                );
            };
        let head_flags: Vec<ResidentFlag> = [
            (self.rng.random_bool(0.06), ResidentFlag::PartyMember),
            (self.rng.random_bool(0.03), ResidentFlag::Disabled),
            (elderly_head && self.rng.random_bool(0.4), ResidentFlag::LivingAlone),
        ]
        .into_iter()
        .filter_map(|(on, f)| on.then_some(f))
        .collect();
        let living_alone = head_flags.contains(&ResidentFlag::LivingAlone);
        add_resident(self, head_name.clone(), head_sex, head_birth, "户主", &head_flags);
        if !living_alone && self.rng.random_bool(0.8) {
            let sex = if head_sex == Sex::Male { Sex::Female } else { Sex::Male };
            let name = self.person_name(sex);
            let birth = head_birth + self.rng.random_range(0..4);
            add_resident(self, name, sex, birth.min(today_year - 18), "配偶", &[]);
        }
        if !elderly_head {
            for _ in 0..self.rng.random_range(0..3) {
                let sex = if self.rng.random_bool(0.5) { Sex::Male } else { Sex::Female };
                let surname: String = head_name.chars().take(1).collect();
                let given = match sex {
                    Sex::Male => self.pick(MALE_GIVEN),
                    Sex::Female => self.pick(FEMALE_GIVEN),
                };
                let birth = (head_birth + self.rng.random_range(22..34)).min(today_year - 1);
                let flags: &[ResidentFlag] = if self.rng.random_bool(0.05) && today_year - birth < 16 {
                    &[ResidentFlag::LeftBehindChild]
                } else {
                    &[]
                };
                add_resident(self, format!("{surname}{given}"), sex, birth, "子女", flags);
            }
        }

        for tag in &tags {
            let since = if *tag == MustVisitTag::NewArrival {
                local_date(created_at)
            } else {
                local_date(year_ago - self.rng.random_range(0..400) * DAY_MS)
            };
            file.tags.insert(*tag, TagEntry { since, added_by: admin, note: String::new() });
        }
        if tags.contains(&MustVisitTag::PoorFamily) {
            file.needs
                .insert(HelpNeed::Hardship, NeedEntry { since: local_date(year_ago), note: "低保户".to_string() });
        }
        if elderly_head && self.rng.random_bool(0.3) {
            file.needs.insert(
                HelpNeed::Medical,
                NeedEntry { since: local_date(year_ago), note: "慢性病，需定期随访".to_string() },
            );
        }

        // A year of visits at roughly the cadence of the strictest tag, with the odd miss.
        let config = PolicyConfig::default();
        let cadence_days = tags
            .iter()
            .filter(|t| **t != MustVisitTag::NewArrival)
            .filter_map(|t| config.visit_every_days.get(t).copied())
            .min();
        let mut visit_times = Vec::new();
        if let Some(every) = cadence_days {
            let mut t = year_ago + self.rng.random_range(0..every) * DAY_MS;
            while t < now - DAY_MS {
                visit_times.push(t);
                // Most visits are on time; some slip by a few days, which the overdue list shows.
                let slip = if self.rng.random_bool(0.15) { self.rng.random_range(1..6) } else { 0 };
                t += (every - self.rng.random_range(0..2) + slip) * DAY_MS;
            }
        } else if !new_arrival && self.rng.random_bool(0.2) {
            visit_times.push(year_ago + self.rng.random_range(0..360) * DAY_MS);
        }
        if new_arrival && self.rng.random_bool(0.5) {
            visit_times.push((created_at + self.rng.random_range(1..5) * DAY_MS).min(now - HOUR_MS));
        }
        let resident_ids: Vec<ResidentId> = file.residents.keys().copied().collect();
        for at in visit_times {
            let at = at + self.rng.random_range(9..18) * HOUR_MS;
            let outcome = match self.rng.random_range(0..100) {
                0..88 => VisitOutcome::Met,
                88..98 => VisitOutcome::NotHome,
                _ => VisitOutcome::Refused,
            };
            let notes = match outcome {
                VisitOutcome::Met => self.pick(&[
                    "身体状况良好，生活能自理。",
                    "了解近况，宣传防诈骗知识。",
                    "反映楼道灯不亮，已记录。",
                    "血压偏高，提醒按时服药。",
                    "家中卫生良好，情绪稳定。",
                    "询问低保年审材料，已告知。",
                ]),
                VisitOutcome::NotHome => "敲门无人应答，已留联系卡。",
                VisitOutcome::Refused => "住户不便接待，改日再访。",
            };
            let id = VisitId::from_u128(self.id());
            let present = if outcome == VisitOutcome::Met { vec![resident_ids[0]] } else { Vec::new() };
            file.visits.insert(
                id,
                Visit {
                    id,
                    visitor: worker.0,
                    visitor_name: worker.1.clone(),
                    at,
                    recorded_at: at + self.rng.random_range(0..120) * MINUTE_MS,
                    outcome,
                    notes: notes.to_string(),
                    needs_found: Vec::new(),
                    follow_up: None,
                    residents_present: present,
                },
            );
        }
        if self.rng.random_bool(0.002) {
            file.status = HouseholdStatus::MovedOut;
            file.moved_out_on = Some(local_date(now - self.rng.random_range(1..200) * DAY_MS));
        }
        file
    }

    fn cases(&mut self, roster: &Roster, households: &[HouseholdFile], size: DemoSize) -> Vec<CaseFile> {
        let counts: [(CaseGroup, usize); 6] = match size {
            DemoSize::Small => [
                (CaseGroup::Help, 60),
                (CaseGroup::Dispute, 10),
                (CaseGroup::MicroWish, 6),
                (CaseGroup::MustArrive, 12),
                (CaseGroup::Report, 20),
                (CaseGroup::Opinion, 10),
            ],
            DemoSize::Street => [
                (CaseGroup::Help, 9_100),
                (CaseGroup::Dispute, 1_200),
                (CaseGroup::MicroWish, 660),
                (CaseGroup::MustArrive, 900),
                (CaseGroup::Report, 2_400),
                (CaseGroup::Opinion, 1_000),
            ],
        };
        let leaders = staff_by_scope(roster, Role::BuildingLeader, |s| match s {
            Scope::Building(b) => Some(*b),
            _ => None,
        });
        let workers = workers_by_grid(roster);
        let supervisors = staff_by_scope(roster, Role::Supervisor, |s| match s {
            Scope::Community(c) => Some(*c),
            _ => None,
        });
        let mut out = Vec::new();
        for (group, count) in counts {
            for _ in 0..count {
                let household = &households[self.rng.random_range(0..households.len())];
                let placement = household.placement;
                let building = placement.building.expect("households are in buildings");
                let worker = workers[&placement.grid].clone();
                let leader = leaders[&building].clone();
                let supervisor = supervisors[&placement.community].clone();
                // Most cases are spread over the year; a few are fresh so today's list has work.
                let age = if self.rng.random_bool(0.03) {
                    self.rng.random_range(0..(3 * DAY_MS))
                } else {
                    self.rng.random_range(0..(365 * DAY_MS))
                };
                let reported_at = self.now - age;
                let (kind, title, reporter) = self.case_subject(group, &household.head, worker.clone(), leader.clone());
                let mut case = CaseFile::new(
                    CaseId::from_u128(self.id()),
                    kind,
                    placement,
                    (group != CaseGroup::Report).then_some(household.id),
                    &title,
                    &format!("{}，{}", household.address(), title),
                    (reporter.0, &reporter.1),
                    (worker.0, &worker.1),
                    reported_at,
                );
                self.history(&mut case, &worker, &supervisor);
                out.push(case);
            }
        }
        out
    }

    fn case_subject(
        &mut self,
        group: CaseGroup,
        head: &str,
        worker: (UserId, String),
        leader: (UserId, String),
    ) -> (CaseKind, String, (UserId, String)) {
        match group {
            CaseGroup::Help => {
                let category = ServiceCategory::ALL[self.rng.random_range(0..8)];
                let what = match category {
                    ServiceCategory::Housekeeping => "需要钟点工打扫卫生",
                    ServiceCategory::ApplianceRepair => "空调不制冷，请求维修",
                    ServiceCategory::Medical => "老人行动不便，请求上门测血压",
                    ServiceCategory::ElderlyCare => "申请助餐服务",
                    ServiceCategory::Utilities => "卫生间水管漏水",
                    ServiceCategory::Legal => "咨询房屋继承手续",
                    ServiceCategory::Locksmith => "钥匙锁在屋内",
                    ServiceCategory::Errands => "代办医保报销",
                };
                (CaseKind::Help(category), format!("{head}：{what}"), worker)
            }
            CaseGroup::Dispute => (CaseKind::Dispute, format!("{head}与邻居因楼道堆物发生矛盾"), worker),
            CaseGroup::MicroWish => {
                let wish = self.pick(&["一个新书包", "一台助听器", "一辆轮椅", "冬季棉被", "学习台灯"]);
                (CaseKind::MicroWish, format!("{head}家微心愿：{wish}"), worker)
            }
            CaseGroup::MustArrive => {
                let kind = MustArriveKind::ALL[self.rng.random_range(0..4)];
                let what = match kind {
                    MustArriveKind::Emergency => "家中老人突发疾病",
                    MustArriveKind::Dispute => "家庭成员争吵",
                    MustArriveKind::Discontent => "对物业收费不满",
                    MustArriveKind::WeddingFuneral => "家中办理丧事",
                };
                (CaseKind::MustArrive(kind), format!("{head}：{what}"), worker)
            }
            CaseGroup::Report => {
                let role = LeaderRole::ALL[self.rng.random_range(0..4)];
                let what = match role {
                    LeaderRole::Sanitation => "楼道垃圾未及时清运",
                    LeaderRole::Publicity => "张贴防汛通知",
                    LeaderRole::Information => "3楼有新住户搬入",
                    LeaderRole::Mediation => "楼上漏水引发邻里纠纷",
                };
                (CaseKind::Report(role), what.to_string(), leader)
            }
            CaseGroup::Opinion => (CaseKind::Opinion, "建议小区增设电动车充电桩".to_string(), worker),
        }
    }

    /// A realistic timeline: most cases accepted, worked and resolved in time (the report's
    /// 97.3% completion rate), some closed by the supervisor with a satisfaction score.
    fn history(&mut self, case: &mut CaseFile, worker: &(UserId, String), supervisor: &(UserId, String)) {
        let mut t = case.reported_at;
        let delay = self.minutes(5, 60);
        if !self.act(case, &mut t, ActionKind::Accept, worker, delay, "已受理") {
            return;
        }
        if matches!(case.kind, CaseKind::MustArrive(_)) {
            let minutes = if self.rng.random_bool(0.05) { 200 } else { 20 };
            if !self.act(case, &mut t, ActionKind::Arrive, worker, minutes * MINUTE_MS, "已到现场") {
                return;
            }
        }
        let delay = self.minutes(60, 1440);
        if !self.act(case, &mut t, ActionKind::Progress, worker, delay, "正在协调处理") {
            return;
        }
        if self.rng.random_bool(0.027) {
            return; // still open: the 2.7% not completed
        }
        let work = if self.rng.random_bool(0.9) { self.minutes(120, 2000) } else { 6 * DAY_MS };
        if !self.act(case, &mut t, ActionKind::Resolve, worker, work, "已办结，居民认可") {
            return;
        }
        if self.rng.random_bool(0.6) {
            let delay = self.minutes(60, 2880);
            self.act(case, &mut t, ActionKind::Close, supervisor, delay, "回访满意");
        }
    }

    fn minutes(&mut self, min: i64, max: i64) -> Millis {
        self.rng.random_range(min..=max) * MINUTE_MS
    }

    /// Appends one action `delay` after `*t`, unless that would be in the future.
    fn act(
        &mut self,
        case: &mut CaseFile,
        t: &mut Millis,
        kind: ActionKind,
        who: &(UserId, String),
        delay: Millis,
        note: &str,
    ) -> bool {
        *t += delay;
        if *t >= self.now {
            return false;
        }
        let satisfaction = (kind == ActionKind::Close).then(|| [5, 5, 5, 4, 4, 3][self.rng.random_range(0..6)]);
        case.push_action(Action {
            id: ActionId::from_u128(self.id()),
            kind,
            by: who.0,
            by_name: who.1.clone(),
            at: *t,
            lamport: 0,
            note: note.to_string(),
            satisfaction,
            to: None,
            to_name: None,
            claimant: None,
            outlet: None,
        });
        true
    }

    /// Micro-wishes through their lifecycle (认领, 已实现, 致谢) and a few help requests
    /// referred (转介) to an outlet of their category. A random stream of its own, run after the
    /// party roster (the claimants), so every other row stays as it was; a wish's generic
    /// timeline from [`Generator::history`] is replaced. As in the report most wishes come
    /// true (660+ fulfilled): about 85% fulfilled (most of them thanked), 10% claimed, 5% open.
    /// The first three wishes are left open, claimed and fulfilled, so even the small demo's
    /// handful shows every state.
    fn wishes_and_referrals(&mut self, roster: &Roster, cases: &mut [CaseFile]) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x1234_0002);
        let mut wishes_seen = 0;
        for case in cases.iter_mut() {
            let worker = (case.reporter, case.reporter_name.clone());
            match case.kind {
                CaseKind::MicroWish => {
                    case.timeline.clear();
                    let branch = roster.party_branches.iter().find(|b| b.grid == case.placement.grid);
                    let members: Vec<&PartyMember> =
                        roster.party_members.iter().filter(|m| branch.is_some_and(|b| b.id == m.branch)).collect();
                    let volunteers: Vec<&Volunteer> =
                        roster.volunteers.iter().filter(|v| v.community == case.placement.community).collect();
                    let claimant = if !members.is_empty() && (volunteers.is_empty() || rng.random_bool(0.6)) {
                        let m = members[rng.random_range(0..members.len())];
                        Claimant { id: ClaimantId::PartyMember(m.id), name: m.name.clone() }
                    } else if !volunteers.is_empty() {
                        let v = volunteers[rng.random_range(0..volunteers.len())];
                        Claimant { id: ClaimantId::Volunteer(v.id), name: v.name.clone() }
                    } else {
                        continue;
                    };
                    let drawn: f64 = rng.random();
                    let stage = [0.0, 0.1, 0.2].get(wishes_seen).copied().unwrap_or(drawn);
                    wishes_seen += 1;
                    if stage < 0.05 {
                        continue;
                    }
                    let mut t = case.reported_at + rng.random_range(1..=72) * HOUR_MS;
                    let note = format!("{}认领", claimant.name);
                    if !self.wish_action(case, t, ActionKind::Claim, &worker, &note, Some(claimant)) || stage < 0.15 {
                        continue;
                    }
                    t += rng.random_range(1..=20) * DAY_MS;
                    if !self.wish_action(case, t, ActionKind::Fulfil, &worker, "心愿已送达", None) || stage < 0.25
                    {
                        continue;
                    }
                    t += rng.random_range(1..=5) * DAY_MS;
                    self.wish_action(case, t, ActionKind::Thank, &worker, "居民写来感谢信", None);
                }
                CaseKind::Help(category) if rng.random_bool(0.05) => {
                    let outlets: Vec<&Outlet> = roster
                        .outlets
                        .iter()
                        .filter(|o| o.community == case.placement.community && o.category == category)
                        .collect();
                    // After the acceptance, before anything later: the timeline is renumbered.
                    let Some(accept) = case.ordered_timeline().first().map(|a| (*a).clone()) else { continue };
                    if outlets.is_empty() || accept.kind != ActionKind::Accept {
                        continue;
                    }
                    let outlet = outlets[rng.random_range(0..outlets.len())];
                    let at = accept.at + rng.random_range(5..=30) * MINUTE_MS;
                    if at >= self.now {
                        continue;
                    }
                    let mut actions: Vec<Action> = case.ordered_timeline().into_iter().cloned().collect();
                    actions.insert(
                        1,
                        Action {
                            id: ActionId::from_u128(self.id()),
                            kind: ActionKind::Refer,
                            by: worker.0,
                            by_name: worker.1.clone(),
                            at,
                            lamport: 0,
                            note: format!("已转介{}，电话{}", outlet.name, outlet.phone),
                            satisfaction: None,
                            to: None,
                            to_name: None,
                            claimant: None,
                            outlet: Some(OutletRef { id: outlet.id, name: outlet.name.clone() }),
                        },
                    );
                    case.timeline.clear();
                    for action in actions {
                        case.push_action(action);
                    }
                }
                _ => {}
            }
        }
    }

    /// Appends one micro-wish action at `at`, unless that is in the future.
    fn wish_action(
        &mut self,
        case: &mut CaseFile,
        at: Millis,
        kind: ActionKind,
        who: &(UserId, String),
        note: &str,
        claimant: Option<Claimant>,
    ) -> bool {
        if at >= self.now {
            return false;
        }
        case.push_action(Action {
            id: ActionId::from_u128(self.id()),
            kind,
            by: who.0,
            by_name: who.1.clone(),
            at,
            lamport: 0,
            note: note.to_string(),
            satisfaction: None,
            to: None,
            to_name: None,
            claimant,
            outlet: None,
        });
        true
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CaseGroup {
    Help,
    Dispute,
    MicroWish,
    MustArrive,
    Report,
    Opinion,
}

/// Staff of `role` keyed by the roster unit their first scope names (grid, building, ...).
fn staff_by_scope<K: Ord>(
    roster: &Roster,
    role: Role,
    unit: impl Fn(&Scope) -> Option<K>,
) -> BTreeMap<K, (UserId, String)> {
    roster
        .staff
        .iter()
        .filter(|s| s.role == role)
        .filter_map(|s| Some((unit(s.scopes.first()?)?, (s.id, s.name.clone()))))
        .collect()
}

fn workers_by_grid(roster: &Roster) -> BTreeMap<GridId, (UserId, String)> {
    staff_by_scope(roster, Role::GridWorker, |s| match s {
        Scope::Grid(g) => Some(*g),
        _ => None,
    })
}

fn outlet_name(category: ServiceCategory, community: &str, n: usize) -> String {
    let short: String = community.chars().take(2).collect();
    let base = match category {
        ServiceCategory::Housekeeping => ["好帮手家政", "贴心家政服务部"],
        ServiceCategory::ApplianceRepair => ["美达家电维修", "速修家电服务中心"],
        ServiceCategory::Medical => ["社区卫生服务站", "仁和诊所"],
        ServiceCategory::ElderlyCare => ["居家养老服务中心", "老年助餐点"],
        ServiceCategory::Utilities => ["水电维修部", "管道疏通服务"],
        ServiceCategory::Legal => ["法律援助工作站", "人民调解室"],
        ServiceCategory::Locksmith => ["公安备案开锁", "安心锁业"],
        ServiceCategory::Errands => ["便民代办点", "党群服务代办窗口"],
    };
    format!("{short}{}", base[n % 2])
}

/// Splits `total` into `parts` near-equal whole numbers.
fn split_evenly(total: usize, parts: usize) -> Vec<usize> {
    (0..parts).map(|i| total / parts + usize::from(i < total % parts)).collect()
}

/// The date a demo should treat as "today" for a given instant (re-exported for callers that
/// want to print it).
pub fn demo_today(now: Millis) -> NaiveDate {
    local_date(now)
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;

    use super::*;

    const NOW: Millis = 1_795_000_000_000;

    #[test]
    fn the_street_demo_has_a_party_branch_per_grid_and_a_party_group_per_building() {
        let demo = generate(DemoSize::Street, 7, NOW);
        let roster = &demo.roster;
        assert_eq!((roster.grids.len(), roster.party_branches.len()), (86, 86));
        assert_eq!((roster.buildings.len(), roster.party_groups.len()), (471, 471));
        assert_eq!(roster.party_members.len(), 471 * PARTY_MEMBERS_PER_BUILDING);
        assert_eq!(roster.volunteers.len(), 86 * VOLUNTEERS_PER_GRID);
        let today = local_date(NOW);
        for member in &roster.party_members {
            let branch = roster.party_branches.iter().find(|b| b.id == member.branch).unwrap();
            let building = roster.buildings.iter().find(|b| Some(b.id) == member.building).unwrap();
            assert_eq!(building.grid, branch.grid, "{} lives in the branch's grid", member.name);
            assert!(member.reported_at <= today && member.reported_at.year() >= 2018);
        }
        for volunteer in &roster.volunteers {
            assert!((1..=3).contains(&volunteer.skills.len()));
            assert_eq!(crate::party::parse_skills(&volunteer.skills.join(";")).unwrap(), volunteer.skills);
        }
    }

    #[test]
    fn the_party_lists_come_after_every_case_and_are_deterministic() {
        let demo = generate(DemoSize::Small, 7, NOW);
        // The org rows come first in id order; the party rows come after every case.
        let last_case = demo.cases.iter().map(|c| c.id.0.as_u128()).max().unwrap();
        assert!(demo.roster.party_branches.iter().all(|b| b.id.0.as_u128() > last_case));
        assert_eq!(generate(DemoSize::Small, 7, NOW).roster, demo.roster, "deterministic");
        assert_eq!(demo.roster.party_branches.len(), 3);
        assert_eq!(demo.roster.volunteers.len(), 3 * VOLUNTEERS_PER_GRID);
    }

    #[test]
    fn activities_come_last_and_some_serve_the_grids_cases() {
        let demo = generate(DemoSize::Small, 7, NOW);
        assert_eq!(demo.activities.len(), 3 * ACTIVITIES_PER_GRID);
        let last_party = demo.roster.volunteers.iter().map(|v| v.id.0.as_u128()).max().unwrap();
        assert!(demo.activities.iter().all(|a| a.id.0.as_u128() > last_party));
        let linked = demo.activities.iter().filter(|a| a.case.is_some()).count();
        assert!(linked > 5 && linked < demo.activities.len() / 2, "{linked} linked to cases");
        for activity in demo.activities.iter().filter(|a| a.case.is_some()) {
            let case = demo.cases.iter().find(|c| Some(c.id) == activity.case).unwrap();
            assert_eq!(case.placement.grid, activity.placement.grid);
        }
        assert_eq!(generate(DemoSize::Small, 7, NOW).activities, demo.activities, "deterministic");
    }
}
